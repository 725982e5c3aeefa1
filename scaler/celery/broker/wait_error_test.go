package broker_test

import (
	"strings"
	"testing"
	"time"

	"github.com/montage/montage-scaler/scaler/celery"
	"github.com/montage/montage-scaler/test/servers"
)

// A broker that refuses scripts by renaming their commands away (as some
// managed Redis offerings do) answers "ERR unknown command 'EVAL', with
// args beginning with: '<the script>' …": the wait's error names the
// refusal, never the Lua source, and the counts stand.
func TestAWaitErrorNamesTheRefusalWithoutQuotingTheScript(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"EVAL renamed away", []string{"--rename-command", "EVAL", ""}, `queue "q": ERR unknown command 'eval'`},
		{"EVAL and EVALSHA renamed away", []string{"--rename-command", "EVAL", "", "--rename-command", "EVALSHA", ""}, `queue "q": ERR unknown command 'eval'`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := servers.StartRedisWith(t, servers.RedisOptions{Args: tc.args})
			servers.SendTasks(t, servers.ProducerOptions{BrokerURL: r.URL(0)}, servers.Block("u", "q"))
			w := fastHub(t).Watch(mustBroker(t, r.URL(0)), layout("", time.Hour, true, "q"))
			defer w.Close()
			b := waitFor(t, w, "counted, the wait unknown", func(b celery.Backlog) bool { return b.Queued == 1 && b.WaitError != "" })
			if b.Queues[0].OldestWaitSeconds != nil || !strings.HasPrefix(b.WaitError, tc.want) {
				t.Errorf("wait %v, error %q; want no wait and an error starting %q", b.Queues[0].OldestWaitSeconds, b.WaitError, tc.want)
			}
			for _, fragment := range []string{"KEYS", "ARGV", "redis.call", "local ", "args beginning"} {
				if strings.Contains(b.WaitError, fragment) {
					t.Errorf("the wait's error quotes the script (%q): %q", fragment, b.WaitError)
				}
			}
		})
	}
}
