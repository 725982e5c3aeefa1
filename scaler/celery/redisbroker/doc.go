// Package redisbroker is the Redis transport of the celery component: the
// poll of one Celery broker on Redis (kombu's layout) that gives each
// watched layout its celery.Backlog, in rounds of pipelines judged by the
// broker's own clock, and the worker heartbeat subscriptions its polls
// share, one per Redis server. Package celery/broker's Hub runs one poll
// per broker through it; NewClient gives other components (the forecast's
// history) a client dialled the same way.
package redisbroker
