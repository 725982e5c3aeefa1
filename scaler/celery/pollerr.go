package celery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// pipeErr says what a failed pipeline was and why: the command and key
// Redis refused (WRONGTYPE names no key by itself), or, when no answer came,
// the calls, the address and the limit that passed.
func (bc *brokerConn) pipeErr(ctx context.Context, cmds []redis.Cmder, err error) error {
	prefix := "celery: poll " + bc.broker.Redacted()
	for _, c := range cmds {
		var rerr redis.Error
		if cerr := c.Err(); cerr != nil && cerr != redis.Nil && errors.As(cerr, &rerr) {
			if isScript(c) {
				cerr = scriptError(cerr)
			}
			return fmt.Errorf("%s: %s: %w", prefix, describeCmd(c), cerr)
		}
	}
	var ne net.Error
	switch {
	case ctx.Err() != nil && errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: %s got no answer from %s within the poll's limit of %s: %w",
			prefix, describePipeline(cmds), bc.broker.Addr(), bc.o.PollTimeout, err)
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("%s: %s got no answer from %s within the Redis timeout of %s (--redis-timeout): %w",
			prefix, describePipeline(cmds), bc.broker.Addr(), min(bc.o.ReadTimeout, bc.o.DialTimeout), err)
	}
	return fmt.Errorf("%s: %w", prefix, err)
}

// describeCmd is a command and its key, quoted (kombu's separator is not
// printable).
func describeCmd(c redis.Cmder) string {
	args := c.Args()
	if isScript(c) {
		return strings.ToUpper(c.Name()) + " of the queue-head script" // its first argument is the script
	}
	if len(args) < 2 {
		return strings.ToUpper(c.Name())
	}
	return fmt.Sprintf("%s %s", strings.ToUpper(c.Name()), strconv.Quote(fmt.Sprint(args[1])))
}

func isScript(c redis.Cmder) bool {
	n := strings.ToLower(c.Name())
	return n == "eval" || n == "evalsha"
}

// describePipeline counts a pipeline's commands by name: "pipeline of 9
// commands (8 LLEN, HLEN)".
func describePipeline(cmds []redis.Cmder) string {
	var names []string
	count := map[string]int{}
	for _, c := range cmds {
		n := strings.ToUpper(c.Name())
		if count[n] == 0 {
			names = append(names, n)
		}
		count[n]++
	}
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n
		if count[n] > 1 {
			parts[i] = fmt.Sprintf("%d %s", count[n], n)
		}
	}
	return fmt.Sprintf("pipeline of %d commands (%s)", len(cmds), strings.Join(parts, ", "))
}

// headsOnly says the pipeline's error err came from head scripts alone:
// the counts were read, only the queue waits are lost. (A connection that
// failed may leave every command without its own error.)
func headsOnly(err error, llen map[string]*redis.IntCmd, plans map[string]*prefixPlan, groups map[string]*headGroup) bool {
	for _, c := range llen {
		if c.Err() != nil {
			return false
		}
	}
	for _, p := range plans {
		if p.hlen.Err() != nil || (p.scan != nil && p.scan.Err() != nil) || (p.scores != nil && p.scores.Err() != nil) {
			return false
		}
	}
	for _, g := range groups {
		if g.cmd != nil && errors.Is(g.cmd.Err(), err) {
			return true
		}
	}
	return false
}
