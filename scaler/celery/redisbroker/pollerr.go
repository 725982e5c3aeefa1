package redisbroker

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
func (bc *Conn) pipeErr(ctx context.Context, cmds []redis.Cmder, err error) error {
	prefix := "celery: poll " + bc.broker.Redacted()
	for _, c := range cmds {
		var rerr redis.Error
		if cerr := c.Err(); cerr != nil && cerr != redis.Nil && errors.As(cerr, &rerr) {
			return bc.cmdErr(c)
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

// cmdErr is the error of one command Redis refused, naming the command and
// its key.
func (bc *Conn) cmdErr(c redis.Cmder) error {
	err := c.Err()
	if isScript(c) {
		err = scriptError(err)
	}
	return fmt.Errorf("celery: poll %s: %s: %w", bc.broker.Redacted(), describeCmd(c), err)
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

// dialFailed says err is a failure to reach the broker at all (refused,
// no route, no such host), as opposed to a round that got no answer in
// time, which its own content may have caused.
func dialFailed(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}
