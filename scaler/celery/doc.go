// Package celery is the celery component's pure half: the trigger
// metadata it reads (Keys, ParseConfig, Config, Layout), the broker URL
// in Celery's syntax (Broker), the evidence a broker's poll gives (Backlog)
// and the opinion on it (Config.Opinion), and what a watch holds (Claims).
// It does no I/O and imports no client library: the Hub that polls the
// brokers is package celery/broker, and the Redis transport under it
// package celery/redisbroker.
//
// Unacked entries are given to a queue by their routing key, which is the
// queue name with Celery's default routing; tasks routed through a custom
// exchange with other routing keys are not attributed.
package celery
