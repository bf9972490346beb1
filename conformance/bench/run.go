package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	dbplugin "github.com/hashicorp/vault/sdk/database/dbplugin/v5"
	"github.com/hashicorp/vault/sdk/helper/pluginutil"

	"dbplugin.test/conformance"
)

// Plugin keys, in the order they alternate within a round.
const (
	keyOurs = "ours"
	keyGo   = "go"
	keyRaw  = "raw"
)

type runConfig struct {
	ours, goBin, raw string
	quick            bool
	rounds           int
	groups           map[string]bool

	coldLaunches  int           // per plugin per round
	warmup        int           // sequential NewUser calls before timing
	latencyCalls  int           // timed sequential NewUser calls per round
	tputDuration  time.Duration // per concurrency level per round
	tputWarmup    time.Duration
	memoryCalls   int // NewUser calls before the "after N calls" RSS
	memoryFlight  int
	muxInstances  int
	settle        time.Duration // pause before reading an idle RSS
	concurrencies []int
}

func (c *runConfig) defaults() {
	if c.rounds == 0 {
		c.rounds = 5
		if c.quick {
			c.rounds = 2
		}
	}
	c.concurrencies = []int{1, 16, 64}
	c.memoryCalls, c.memoryFlight, c.muxInstances = 20000, 64, 100
	if c.quick {
		c.coldLaunches, c.warmup, c.latencyCalls = 3, 300, 1000
		c.tputDuration, c.tputWarmup = 300*time.Millisecond, 50*time.Millisecond
		c.memoryCalls = 5000
		c.settle = 200 * time.Millisecond
	} else {
		c.coldLaunches, c.warmup, c.latencyCalls = 8, 1000, 5000
		c.tputDuration, c.tputWarmup = 2*time.Second, 300*time.Millisecond
		c.settle = 500 * time.Millisecond
	}
}

func (c *runConfig) want(group string) bool { return len(c.groups) == 0 || c.groups[group] }

// Results is what `bench run` writes: every sample, by metric and plugin.
type Results struct {
	Date    string                          `json:"date"`
	Mode    string                          `json:"mode"`
	Rounds  int                             `json:"rounds"`
	Params  map[string]any                  `json:"params"`
	Machine Machine                         `json:"machine"`
	Plugins map[string]PluginInfo           `json:"plugins"`
	Samples map[string]map[string][]float64 `json:"samples"` // metric -> plugin -> samples
}

type Machine struct {
	CPUs     int    `json:"cpus"`
	MemGiB   int    `json:"mem_gib"`
	CPUModel string `json:"cpu_model"`
	GoOS     string `json:"goos"`
	GoArch   string `json:"goarch"`
}

type PluginInfo struct {
	Binary string `json:"binary"` // base name only
	Size   int64  `json:"size_bytes"`
	SHA256 string `json:"sha256"`
}

func (r *Results) add(metric, plugin string, v float64) {
	if r.Samples[metric] == nil {
		r.Samples[metric] = map[string][]float64{}
	}
	r.Samples[metric][plugin] = append(r.Samples[metric][plugin], v)
}

// timeline records when go-plugin logs the spawn and the handshake of a launch.
type timeline struct {
	mu        sync.Mutex
	starting  time.Time // "starting plugin": just before the process is spawned
	handshake time.Time // "using plugin": the handshake line was read and parsed
}

func (t *timeline) Accept(_ string, _ hclog.Level, msg string, _ ...interface{}) {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	switch msg {
	case "starting plugin":
		t.starting = now
	case "using plugin":
		t.handshake = now
	}
}

func (t *timeline) reset() {
	t.mu.Lock()
	t.starting, t.handshake = time.Time{}, time.Time{}
	t.mu.Unlock()
}

func (t *timeline) get() (time.Time, time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.starting, t.handshake
}

type driver struct {
	cfg     runConfig
	catalog *conformance.Catalog
	times   *timeline
	order   []string
	res     *Results
}

func run(cfg runConfig) (*Results, error) {
	logger := hclog.NewInterceptLogger(&hclog.LoggerOptions{Name: "host", Level: hclog.Warn, Output: os.Stderr})
	times := &timeline{}
	logger.RegisterSink(times)
	d := &driver{cfg: cfg, catalog: conformance.NewCatalog(logger), times: times}
	mode := "full"
	if cfg.quick {
		mode = "quick"
	}
	d.res = &Results{
		Date:    time.Now().UTC().Format("2006-01-02"),
		Mode:    mode,
		Rounds:  cfg.rounds,
		Machine: machine(),
		Plugins: map[string]PluginInfo{},
		Samples: map[string]map[string][]float64{},
		Params: map[string]any{
			"cold_launches_per_round": cfg.coldLaunches,
			"warmup_calls":            cfg.warmup,
			"latency_calls_per_round": cfg.latencyCalls,
			"throughput_seconds":      cfg.tputDuration.Seconds(),
			"concurrencies":           cfg.concurrencies,
			"memory_calls":            cfg.memoryCalls,
			"memory_in_flight":        cfg.memoryFlight,
			"mux_instances":           cfg.muxInstances,
		},
	}
	bins := map[string]string{keyOurs: cfg.ours, keyGo: cfg.goBin, keyRaw: cfg.raw}
	for _, key := range []string{keyOurs, keyGo, keyRaw} {
		bin := bins[key]
		if bin == "" {
			continue
		}
		abs, err := filepath.Abs(bin)
		if err != nil {
			return nil, err
		}
		sum, size, err := fileInfo(abs)
		if err != nil {
			return nil, err
		}
		d.catalog.Register(&pluginutil.PluginRunner{Name: key, Command: abs, Args: []string{}, Sha256: sum})
		d.res.Plugins[key] = PluginInfo{Binary: filepath.Base(abs), Size: size, SHA256: hex.EncodeToString(sum)}
		d.res.add("binary_size_mib", key, float64(size)/(1<<20))
		d.order = append(d.order, key)
	}

	ctx := context.Background()
	for round := 0; round < cfg.rounds; round++ {
		fmt.Fprintf(os.Stderr, "round %d/%d\n", round+1, cfg.rounds)
		if cfg.want("cold") {
			for i := 0; i < cfg.coldLaunches; i++ {
				for _, key := range d.order {
					if err := d.cold(ctx, key); err != nil {
						return nil, fmt.Errorf("cold start of %s: %w", key, err)
					}
				}
			}
		}
		if cfg.want("latency") || cfg.want("throughput") {
			for _, key := range d.order {
				if err := d.perf(ctx, key); err != nil {
					return nil, fmt.Errorf("latency/throughput of %s: %w", key, err)
				}
			}
		}
		if cfg.want("memory") {
			for _, key := range d.order {
				if err := d.memory(ctx, key); err != nil {
					return nil, fmt.Errorf("memory of %s: %w", key, err)
				}
			}
		}
		if cfg.want("mux") {
			for _, key := range d.order {
				if key == keyRaw {
					continue // the baseline does not multiplex
				}
				if err := d.mux(ctx, key); err != nil {
					return nil, fmt.Errorf("multiplexing of %s: %w", key, err)
				}
			}
		}
	}
	return d.res, nil
}

func fileInfo(path string) ([]byte, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	return h.Sum(nil), n, err
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// open launches (or joins) the plugin through the SDK's v5 factory and initializes it
// without a snapshot path: the in-memory plugins then touch no disk.
func (d *driver) open(ctx context.Context, key string) (*conformance.DB, error) {
	db, err := d.catalog.OpenDatabase(ctx, key)
	if err != nil {
		return nil, err
	}
	_, err = db.Initialize(ctx, dbplugin.InitializeRequest{
		Config:           map[string]any{"connection_url": "inmem://bench"},
		VerifyConnection: true,
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("initialize: %w", err)
	}
	return db, nil
}

func (d *driver) cold(ctx context.Context, key string) error {
	d.times.reset()
	db, err := d.catalog.OpenDatabase(ctx, key) // spawn, handshake, TLS, multiplexing probe, Type
	typed := time.Now()
	if err != nil {
		return err
	}
	defer db.Close()
	start, handshake := d.times.get()
	if start.IsZero() || handshake.IsZero() {
		return fmt.Errorf("go-plugin did not log the spawn and the handshake")
	}
	d.res.add("cold_handshake_ms", key, ms(handshake.Sub(start)))
	d.res.add("cold_first_type_ms", key, ms(typed.Sub(start)))
	return nil
}

func newUserRequest() dbplugin.NewUserRequest {
	return dbplugin.NewUserRequest{
		UsernameConfig: dbplugin.UsernameMetadata{DisplayName: "token-benchmark", RoleName: "readonly-role"},
		Statements: dbplugin.Statements{Commands: []string{
			`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`,
			`GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{{username}}";`,
		}},
		CredentialType: dbplugin.CredentialTypePassword,
		Password:       "A1a-Bench-Password-0123456789",
		Expiration:     time.Now().Add(time.Hour),
	}
}

func newUser(ctx context.Context, db *conformance.DB) error {
	resp, err := db.NewUser(ctx, newUserRequest())
	if err == nil && !strings.HasPrefix(resp.Username, "v-token-be-readonly-") {
		err = fmt.Errorf("unexpected username %q", resp.Username)
	}
	return err
}

// calls makes n NewUser calls with `flight` of them in flight.
func calls(ctx context.Context, db *conformance.DB, n, flight int) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, flight)
	for w := 0; w < flight; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				if err := newUser(ctx, db); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// throughput runs `flight` callers in a loop for dur and returns calls per second.
func throughput(ctx context.Context, db *conformance.DB, flight int, dur time.Duration) (float64, error) {
	var done atomic.Int64
	var failed atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < flight; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := newUser(ctx, db); err != nil {
					failed.Store(err)
					return
				}
				done.Add(1)
			}
		}()
	}
	time.Sleep(dur)
	n := done.Load()
	elapsed := time.Since(start)
	close(stop)
	wg.Wait()
	if err, ok := failed.Load().(error); ok {
		return 0, err
	}
	return float64(n) / elapsed.Seconds(), nil
}

func (d *driver) perf(ctx context.Context, key string) error {
	db, err := d.open(ctx, key)
	if err != nil {
		return err
	}
	defer db.Close()
	if d.cfg.want("latency") {
		if err := calls(ctx, db, d.cfg.warmup, 1); err != nil {
			return err
		}
		lat := make([]time.Duration, d.cfg.latencyCalls)
		for i := range lat {
			t := time.Now()
			if err := newUser(ctx, db); err != nil {
				return err
			}
			lat[i] = time.Since(t)
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		d.res.add("latency_p50_us", key, us(percentile(lat, 0.50)))
		d.res.add("latency_p99_us", key, us(percentile(lat, 0.99)))
	}
	if d.cfg.want("throughput") {
		for _, c := range d.cfg.concurrencies {
			if _, err := throughput(ctx, db, c, d.cfg.tputWarmup); err != nil {
				return err
			}
			t, err := throughput(ctx, db, c, d.cfg.tputDuration)
			if err != nil {
				return err
			}
			d.res.add(fmt.Sprintf("throughput_%d", c), key, t)
		}
	}
	return nil
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.5) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(sorted) {
		i = len(sorted) - 1
	}
	return sorted[i]
}

// status reads VmRSS and VmHWM (MiB) of a process.
func status(pid int) (rss, hwm float64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(fields[1], 64)
		switch fields[0] {
		case "VmRSS:":
			rss = kb / 1024
		case "VmHWM:":
			hwm = kb / 1024
		}
	}
	if rss == 0 {
		return 0, 0, fmt.Errorf("no VmRSS for pid %d", pid)
	}
	return rss, hwm, sc.Err()
}

func (d *driver) memory(ctx context.Context, key string) error {
	db, err := d.open(ctx, key)
	if err != nil {
		return err
	}
	defer db.Close()
	pid := db.Plugin.Process.PID()
	time.Sleep(d.cfg.settle)
	idle, _, err := status(pid)
	if err != nil {
		return err
	}
	if err := calls(ctx, db, d.cfg.memoryCalls, d.cfg.memoryFlight); err != nil {
		return err
	}
	time.Sleep(d.cfg.settle)
	after, peak, err := status(pid)
	if err != nil {
		return err
	}
	d.res.add("rss_idle_mib", key, idle)
	d.res.add("rss_after_calls_mib", key, after)
	d.res.add("rss_peak_mib", key, peak)
	return nil
}

func (d *driver) mux(ctx context.Context, key string) error {
	first, err := d.open(ctx, key)
	if err != nil {
		return err
	}
	dbs := []*conformance.DB{first}
	defer func() {
		for i := len(dbs) - 1; i >= 0; i-- {
			_ = dbs[i].Close()
		}
	}()
	if err := newUser(ctx, first); err != nil {
		return err
	}
	pid := first.Plugin.Process.PID()
	time.Sleep(d.cfg.settle)
	before, _, err := status(pid)
	if err != nil {
		return err
	}
	for i := 1; i < d.cfg.muxInstances; i++ {
		db, err := d.open(ctx, key)
		if err != nil {
			return err
		}
		dbs = append(dbs, db)
		if got := db.Plugin.Process.PID(); got != pid {
			return fmt.Errorf("instance %d runs in process %d, not %d: not multiplexed", i+1, got, pid)
		}
		if err := newUser(ctx, db); err != nil {
			return err
		}
	}
	time.Sleep(d.cfg.settle)
	after, _, err := status(pid)
	if err != nil {
		return err
	}
	d.res.add("mux_growth_mib", key, after-before)
	return nil
}

func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoOS: runtime.GOOS, GoArch: runtime.GOARCH}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
				kb, _ := strconv.ParseFloat(f[1], 64)
				m.MemGiB = int(kb/(1<<20) + 0.5)
			}
		}
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
