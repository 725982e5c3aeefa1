package servers

import (
	"bytes"
	"context"
	"crypto/rand"
	"embed"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Python is the interpreter that has Debian's python3-celery.
const Python = "/usr/bin/python3"

// Keys the block task uses on its control Redis (no key prefix).
const (
	// StartedKey is a list: the block task RPUSHes its key when it starts.
	StartedKey = "montage:started"
	// ReleaseKeyPrefix + key is a list: RPUSH anything to let that block
	// task finish.
	ReleaseKeyPrefix = "montage:release:"
)

// Task names of the fixture app.
const (
	BlockTask  = "montage.block" // args: [key]; waits for ReleaseKeyPrefix+key
	NoopTask   = "montage.noop"
	RenderTask = "montage.render" // args: [key, seconds, cpuMillis]; sleeps, records on RendersKey
)

// RendersKey is a list on the control Redis: the render task RPUSHes a
// RenderEvent (JSON) when it starts and when it ends.
const RendersKey = "montage:renders"

// RenderEvent is one entry of RendersKey.
type RenderEvent struct {
	Key       string  `json:"key"`
	Event     string  `json:"event"` // start or end
	Host      string  `json:"host"`  // the worker's node name, name@host
	CPUMillis int     `json:"cpuMillis"`
	At        float64 `json:"at"` // Unix seconds, the worker's clock
}

//go:embed testdata/*.py
var pyFiles embed.FS

// WorkerOptions configure a Celery worker.
type WorkerOptions struct {
	BrokerURL         string
	Queues            []string      // default: celery
	AcksLate          bool          // task_acks_late
	Prefetch          int           // worker_prefetch_multiplier; default 1
	Concurrency       int           // prefork processes; default 1
	KeyPrefix         string        // kombu global_keyprefix
	VisibilityTimeout time.Duration // kombu visibility_timeout; 0 keeps kombu's 1h
	ControlURL        string        // Redis for the block task's keys; default BrokerURL
	Name              string        // node name before @; default unique
	Host              string        // node name after @; default montage-test
	Pool              string        // -P: prefork (Celery's default), threads, solo
}

// Worker is a running `python3 -m celery worker`.
type Worker struct {
	// Name is the node name (name@host) in heartbeats.
	Name string

	cmd     *exec.Cmd
	done    chan struct{}
	logPath string
	once    sync.Once
}

// RequireCelery skips the test when /usr/bin/python3 lacks celery or redis.
func RequireCelery(t testing.TB) {
	t.Helper()
	out, err := exec.Command(Python, "-c", "import celery, kombu, redis").CombinedOutput()
	if err != nil {
		t.Skipf("servers: %s cannot import celery/kombu/redis (apt-get install python3-celery python3-redis): %v: %s", Python, err, out)
	}
}

// appDir writes the fixture app and producer into a fresh temp dir.
func appDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	if err := writeApp(dir); err != nil {
		t.Fatalf("servers: %v", err)
	}
	return dir
}

// writeApp writes the fixture app and producer into dir.
func writeApp(dir string) error {
	for _, name := range []string{"montage_celery_app.py", "montage_send_tasks.py"} {
		b, err := pyFiles.ReadFile("testdata/" + name)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func appEnv(dir, broker, prefix, control string, vt time.Duration) []string {
	env := append(os.Environ(),
		"PYTHONPATH="+dir, "PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1",
		"MONTAGE_BROKER_URL="+broker, "MONTAGE_KEY_PREFIX="+prefix, "MONTAGE_CONTROL_URL="+control)
	if vt > 0 {
		env = append(env, "MONTAGE_VISIBILITY_TIMEOUT="+strconv.FormatFloat(vt.Seconds(), 'f', -1, 64))
	}
	return env
}

// StartCeleryWorker starts a worker with a generated app module in
// t.TempDir() and waits until it is ready; it is stopped in t.Cleanup. The
// test is skipped when Python lacks celery.
func StartCeleryWorker(t testing.TB, o WorkerOptions) *Worker {
	t.Helper()
	RequireCelery(t)
	if o.BrokerURL == "" {
		t.Fatalf("servers: WorkerOptions.BrokerURL is required")
	}
	w, err := LaunchCeleryWorker(t.TempDir(), o)
	if err != nil {
		t.Fatalf("servers: %v", err)
	}
	t.Cleanup(w.Stop)
	ready := waitFor(context.Background(), 60*time.Second, func() bool {
		select {
		case <-w.done:
			return true
		default:
		}
		return w.Ready()
	})
	select {
	case <-w.done:
		t.Fatalf("servers: celery worker exited at start:\n%s", w.Log())
	default:
	}
	if !ready {
		t.Fatalf("servers: celery worker not ready after 60s:\n%s", w.Log())
	}
	return w
}

// LaunchCeleryWorker starts a worker with the fixture app written to dir
// and returns at once, without waiting until it is ready (Ready says when)
// and without a cleanup: the caller stops it. It does not need the test's
// goroutine, so a harness can start workers as pods come and go.
func LaunchCeleryWorker(dir string, o WorkerOptions) (*Worker, error) {
	if o.BrokerURL == "" {
		return nil, fmt.Errorf("WorkerOptions.BrokerURL is required")
	}
	if len(o.Queues) == 0 {
		o.Queues = []string{"celery"}
	}
	if o.Prefetch <= 0 {
		o.Prefetch = 1
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 1
	}
	if o.ControlURL == "" {
		o.ControlURL = o.BrokerURL
	}
	if o.Name == "" {
		o.Name = "w" + rand.Text()[:10]
	}
	if o.Host == "" {
		o.Host = "montage-test"
	}
	if err := writeApp(dir); err != nil {
		return nil, err
	}
	w := &Worker{Name: o.Name + "@" + o.Host, logPath: filepath.Join(dir, "worker.log"), done: make(chan struct{})}
	logf, err := os.Create(w.logPath)
	if err != nil {
		return nil, err
	}
	args := []string{"-m", "celery", "-A", "montage_celery_app", "worker",
		"-Q", strings.Join(o.Queues, ","), "-c", strconv.Itoa(o.Concurrency),
		"--prefetch-multiplier", strconv.Itoa(o.Prefetch), "-n", w.Name,
		"-l", "info", "--without-mingle", "--without-gossip"}
	if o.Pool != "" {
		args = append(args, "-P", o.Pool)
	}
	w.cmd = exec.Command(Python, args...)
	w.cmd.Dir = dir
	acks := "0"
	if o.AcksLate {
		acks = "1"
	}
	w.cmd.Env = append(appEnv(dir, o.BrokerURL, o.KeyPrefix, o.ControlURL, o.VisibilityTimeout),
		"MONTAGE_ACKS_LATE="+acks, "MONTAGE_PREFETCH="+strconv.Itoa(o.Prefetch))
	w.cmd.Stdout, w.cmd.Stderr = logf, logf
	// Pdeathsig: a test binary that dies takes its workers with it.
	w.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := w.cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start celery worker: %w", err)
	}
	go func() { _ = w.cmd.Wait(); logf.Close(); close(w.done) }()
	return w, nil
}

// Ready reports whether the worker has said it is ready (it consumes).
func (w *Worker) Ready() bool { return strings.Contains(w.Log(), " ready.") }

// Done is closed when the worker process has exited.
func (w *Worker) Done() <-chan struct{} { return w.done }

// Terminate asks for Celery's warm shutdown (SIGTERM to the worker and its
// pool) and returns at once: the worker finishes the tasks it runs, then
// exits (Done). Kill still ends it at once.
func (w *Worker) Terminate() { _ = syscall.Kill(-w.cmd.Process.Pid, syscall.SIGTERM) }

// Log returns what the worker printed so far.
func (w *Worker) Log() string {
	b, _ := os.ReadFile(w.logPath)
	return string(b)
}

// Kill sends SIGKILL to the worker and its pool processes, as a node crash
// would: its unacked entries stay in Redis.
func (w *Worker) Kill() {
	w.once.Do(func() {
		_ = syscall.Kill(-w.cmd.Process.Pid, syscall.SIGKILL)
		<-w.done
	})
}

// Stop asks for a warm shutdown (SIGTERM) and kills the worker if it has not
// exited after 20s.
func (w *Worker) Stop() {
	w.once.Do(func() {
		_ = syscall.Kill(-w.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-w.done:
		case <-time.After(20 * time.Second):
			_ = syscall.Kill(-w.cmd.Process.Pid, syscall.SIGKILL)
			<-w.done
		}
	})
}

// Task is one task to send.
type Task struct {
	Name      string  `json:"name"`                // default BlockTask
	Args      []any   `json:"args"`                // BlockTask: [key]
	Queue     string  `json:"queue,omitempty"`     // default: the app's default queue
	Priority  *int    `json:"priority,omitempty"`  // kombu priority 0..9 (0 first on Redis)
	Countdown float64 `json:"countdown,omitempty"` // seconds: an ETA task
}

// Block is a BlockTask on queue that waits for ReleaseKeyPrefix+key.
func Block(key, queue string) Task {
	return Task{Name: BlockTask, Args: []any{key}, Queue: queue}
}

// Render is a RenderTask on queue: it runs for d and, by the test's account,
// uses cpuMillis of CPU meanwhile.
func Render(key, queue string, d time.Duration, cpuMillis int) Task {
	return Task{Name: RenderTask, Args: []any{key, d.Seconds(), cpuMillis}, Queue: queue}
}

// WithPriority returns t with a priority.
func (t Task) WithPriority(p int) Task { t.Priority = &p; return t }

// WithCountdown returns t with a countdown (an ETA task).
func (t Task) WithCountdown(d time.Duration) Task { t.Countdown = d.Seconds(); return t }

// ProducerOptions say where a producer sends.
type ProducerOptions struct {
	BrokerURL  string
	KeyPrefix  string // kombu global_keyprefix, as the workers use it
	MasterName string // kombu master_name, for a sentinel:// BrokerURL
	// Preload are Python files (such as a before_task_publish handler)
	// the producer imports before it sends.
	Preload []string
}

// SendTasks sends tasks with a real Celery producer (python) and returns
// their ids in order.
func SendTasks(t testing.TB, p ProducerOptions, tasks ...Task) []string {
	t.Helper()
	RequireCelery(t)
	for i := range tasks {
		if tasks[i].Name == "" {
			tasks[i].Name = BlockTask
		}
	}
	in, err := json.Marshal(tasks)
	if err != nil {
		t.Fatalf("servers: encode tasks: %v", err)
	}
	dir := appDir(t)
	var modules []string
	for _, path := range p.Preload {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("servers: preload: %v", err)
		}
		name := strings.TrimSuffix(filepath.Base(path), ".py")
		if err := os.WriteFile(filepath.Join(dir, name+".py"), b, 0o644); err != nil {
			t.Fatalf("servers: preload: %v", err)
		}
		modules = append(modules, name)
	}
	cmd := exec.Command(Python, filepath.Join(dir, "montage_send_tasks.py"))
	cmd.Dir = dir
	cmd.Env = append(appEnv(dir, p.BrokerURL, p.KeyPrefix, p.BrokerURL, 0), "MONTAGE_PRELOAD="+strings.Join(modules, ","))
	if p.MasterName != "" {
		cmd.Env = append(cmd.Env, "MONTAGE_MASTER_NAME="+p.MasterName)
	}
	cmd.Stdin = bytes.NewReader(in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("servers: celery producer: %v\n%s", err, stderr.String())
	}
	ids := strings.Fields(stdout.String())
	if len(ids) != len(tasks) {
		t.Fatalf("servers: producer sent %d tasks, want %d:\n%s%s", len(ids), len(tasks), stdout.String(), stderr.String())
	}
	return ids
}
