package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
)

// metric describes one row of the table.
type metric struct {
	ID     string
	Label  string
	Unit   string
	Higher bool // higher is better
	Only   string
	// Target, when set, is shown next to the figure (never asserted).
	Target string
	// Met reports whether the figure meets the target, from the ours/Go ratio and
	// the medians (ours, Go).
	Met func(ratio, ours, goMedian float64) bool
}

var metrics = []metric{
	{ID: "cold_handshake_ms", Label: "Cold start: spawn → handshake line read", Unit: "ms", Only: "cold",
		Target: "≤ 0.5× Go", Met: func(r, _, _ float64) bool { return r <= 0.5 }},
	{ID: "cold_first_type_ms", Label: "Cold start: spawn → first successful Type", Unit: "ms", Only: "cold",
		Target: "≤ 0.5× Go", Met: func(r, _, _ float64) bool { return r <= 0.5 }},
	{ID: "latency_p50_us", Label: "NewUser latency p50 (sequential)", Unit: "µs", Only: "latency"},
	{ID: "latency_p99_us", Label: "NewUser latency p99 (sequential)", Unit: "µs", Only: "latency",
		Target: "≤ 0.7× Go", Met: func(r, _, _ float64) bool { return r <= 0.7 }},
	{ID: "throughput_1", Label: "NewUser throughput, 1 in flight", Unit: "calls/s", Higher: true, Only: "throughput"},
	{ID: "throughput_16", Label: "NewUser throughput, 16 in flight", Unit: "calls/s", Higher: true, Only: "throughput"},
	{ID: "throughput_64", Label: "NewUser throughput, 64 in flight", Unit: "calls/s", Higher: true, Only: "throughput",
		Target: "≥ 1.5× Go", Met: func(r, _, _ float64) bool { return r >= 1.5 }},
	{ID: "rss_idle_mib", Label: "Resident memory, idle after start (VmRSS)", Unit: "MiB", Only: "memory",
		Target: "≤ 0.3× Go", Met: func(r, _, _ float64) bool { return r <= 0.3 }},
	{ID: "rss_after_calls_mib", Label: "Resident memory after N NewUser calls (VmRSS)", Unit: "MiB", Only: "memory"},
	{ID: "rss_peak_mib", Label: "Resident memory, peak (VmHWM)", Unit: "MiB", Only: "memory"},
	{ID: "mux_growth_mib", Label: "99 more multiplexed instances on one process: RSS growth", Unit: "MiB", Only: "mux",
		Target: "≤ 2 MB (1.91 MiB)", Met: func(_, ours, _ float64) bool { return ours <= 2e6/(1<<20) }},
	{ID: "binary_size_mib", Label: "Stripped release binary", Unit: "MiB", Only: "size",
		Target: "≤ 0.4× Go", Met: func(r, _, _ float64) bool { return r <= 0.4 }},
}

// microNames are the micro-benchmarks, by the name both suites use.
var microNames = []struct{ ID, Label string }{
	{"template_parse", "Username template: parse (PostgreSQL default)"},
	{"template_render", "Username template: render (PostgreSQL default)"},
	{"statements_apply", "Statement substitution: 2 statements, name/password/expiration"},
}

// Stat is a summary of samples.
type Stat struct {
	Median  float64   `json:"median"`
	Min     float64   `json:"min"`
	Max     float64   `json:"max"`
	N       int       `json:"n"`
	Samples []float64 `json:"samples,omitempty"`
}

func summarize(xs []float64) *Stat {
	if len(xs) == 0 {
		return nil
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return &Stat{Median: med, Min: s[0], Max: s[len(s)-1], N: len(s), Samples: xs}
}

// pairedRatio divides a[i] by b[i]: the samples were taken in alternation, so each
// pair saw the same machine state. Falls back to the ratio of medians.
func pairedRatio(a, b []float64) *Stat {
	if len(a) == 0 || len(b) == 0 {
		return nil
	}
	if len(a) != len(b) {
		ma, mb := summarize(a).Median, summarize(b).Median
		if mb == 0 {
			return nil
		}
		return &Stat{Median: ma / mb, Min: ma / mb, Max: ma / mb, N: 1}
	}
	var r []float64
	for i := range a {
		if b[i] != 0 {
			r = append(r, a[i]/b[i])
		}
	}
	st := summarize(r)
	if st != nil {
		st.Samples = nil
	}
	return st
}

// Row is one line of the table and of the JSON file.
type Row struct {
	ID        string `json:"id"`
	Label     string `json:"label"`
	Unit      string `json:"unit"`
	Ours      *Stat  `json:"ours,omitempty"`
	Go        *Stat  `json:"go,omitempty"`
	Raw       *Stat  `json:"raw_tonic,omitempty"`
	Ratio     *Stat  `json:"ratio_ours_over_go,omitempty"`
	Target    string `json:"target,omitempty"`
	TargetMet *bool  `json:"target_met,omitempty"`
	Reproduce string `json:"reproduce"`
}

// Report is the combined JSON file.
type Report struct {
	Date     string                `json:"date"`
	Mode     string                `json:"mode"`
	Rounds   int                   `json:"rounds"`
	Machine  Machine               `json:"machine"`
	Params   map[string]any        `json:"params"`
	Plugins  map[string]PluginInfo `json:"plugins"`
	Builds   map[string]string     `json:"builds"`
	Rows     []Row                 `json:"rows"`
	Overhead []Row                 `json:"framework_overhead"`
	Micro    []Row                 `json:"micro"`
}

func report(macroPath, microDir, jsonOut, mdOut, command string) error {
	b, err := os.ReadFile(macroPath)
	if err != nil {
		return err
	}
	var res Results
	if err := json.Unmarshal(b, &res); err != nil {
		return err
	}
	rep := Report{
		Date: res.Date, Mode: res.Mode, Rounds: res.Rounds, Machine: res.Machine,
		Params: res.Params, Plugins: res.Plugins,
		Builds: map[string]string{
			"ours":      "scripts/build-dist (cargo profile `dist`: opt-level=s, fat LTO, codegen-units=1, panic=unwind, strip=symbols; +crt-static)",
			"raw_tonic": "scripts/build-dist -p raw-tonic-plugin (same profile and flags)",
			"go":        "CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' (" + runtime.Version() + ")",
		},
	}
	quick := ""
	if res.Mode == "quick" {
		quick = " --quick"
	}
	for _, m := range metrics {
		s := res.Samples[m.ID]
		if len(s) == 0 {
			continue
		}
		row := Row{ID: m.ID, Label: m.Label, Unit: m.Unit,
			Ours: summarize(s[keyOurs]), Go: summarize(s[keyGo]), Raw: summarize(s[keyRaw]),
			Ratio: pairedRatio(s[keyOurs], s[keyGo]), Target: m.Target,
			Reproduce: command + quick + " --only " + m.Only}
		if m.ID == "rss_after_calls_mib" {
			row.Label = fmt.Sprintf("Resident memory after %v NewUser calls (VmRSS)", res.Params["memory_calls"])
		}
		if m.ID == "mux_growth_mib" {
			row.Label = fmt.Sprintf("%v multiplexed instances on one process: RSS growth over 1", res.Params["mux_instances"])
		}
		if m.Met != nil && row.Ours != nil {
			r, g := 0.0, 0.0
			if row.Ratio != nil {
				r = row.Ratio.Median
			}
			if row.Go != nil {
				g = row.Go.Median
			}
			met := m.Met(r, row.Ours.Median, g)
			row.TargetMet = &met
		}
		rep.Rows = append(rep.Rows, row)
	}
	// Framework overhead: ours against the raw tonic server, same transport, same work.
	overhead := func(id, label, metricID string, higher bool) {
		s := res.Samples[metricID]
		if len(s[keyOurs]) == 0 || len(s[keyRaw]) == 0 {
			return
		}
		var r *Stat
		if higher {
			r = pairedRatio(s[keyRaw], s[keyOurs])
		} else {
			r = pairedRatio(s[keyOurs], s[keyRaw])
		}
		if r == nil {
			return
		}
		pct := &Stat{Median: (r.Median - 1) * 100, Min: (r.Min - 1) * 100, Max: (r.Max - 1) * 100, N: r.N}
		met := pct.Median <= 15
		only := "latency"
		if higher {
			only = "throughput"
		}
		rep.Overhead = append(rep.Overhead, Row{ID: id, Label: label, Unit: "%", Ratio: pct,
			Ours: summarize(s[keyOurs]), Raw: summarize(s[keyRaw]),
			Target: "≤ 15 %", TargetMet: &met, Reproduce: command + quick + " --only " + only})
	}
	overhead("overhead_latency_p50", "Framework overhead over raw tonic: NewUser p50 latency", "latency_p50_us", false)
	overhead("overhead_latency_p99", "Framework overhead over raw tonic: NewUser p99 latency", "latency_p99_us", false)
	overhead("overhead_throughput_64", "Framework overhead over raw tonic: throughput at 64 in flight (raw/ours − 1)", "throughput_64", true)

	if microDir != "" {
		micro, err := readMicro(microDir)
		if err != nil {
			return err
		}
		for _, m := range microNames {
			o, g := micro["rust"][m.ID], micro["go"][m.ID]
			if len(o) == 0 && len(g) == 0 {
				continue
			}
			rep.Micro = append(rep.Micro, Row{ID: m.ID, Label: m.Label, Unit: "ns/op",
				Ours: summarize(o), Go: summarize(g), Ratio: pairedRatio(o, g),
				Reproduce: command + quick + " --only micro"})
		}
	}

	if err := writeJSON(jsonOut, rep); err != nil {
		return err
	}
	md := markdown(&rep, command+quick)
	fmt.Print(md)
	if mdOut != "" {
		return os.WriteFile(mdOut, []byte(md), 0o644)
	}
	return nil
}

var (
	// criterion --output-format bencher: "test template_render ... bench:       1,234 ns/iter (+/- 56)"
	benchRust = regexp.MustCompile(`^test (\S+) \.\.\. bench:\s+([\d,.]+) ns/iter`)
	// go test -bench: "BenchmarkMicro/template_render-2   1000000   1234 ns/op"
	benchGo = regexp.MustCompile(`^BenchmarkMicro/(\S+?)(-\d+)?\s+\d+\s+([\d.]+) ns/op`)
)

// readMicro reads rust-N.txt and go-N.txt (one file per round) into name -> samples.
func readMicro(dir string) (map[string]map[string][]float64, error) {
	out := map[string]map[string][]float64{"rust": {}, "go": {}}
	files, err := filepath.Glob(filepath.Join(dir, "*.txt"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	for _, f := range files {
		lang := strings.SplitN(filepath.Base(f), "-", 2)[0]
		if out[lang] == nil {
			continue
		}
		fh, err := os.Open(f)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if m := benchRust.FindStringSubmatch(line); m != nil && lang == "rust" {
				v, _ := strconv.ParseFloat(strings.ReplaceAll(m[2], ",", ""), 64)
				out[lang][m[1]] = append(out[lang][m[1]], v)
			} else if m := benchGo.FindStringSubmatch(line); m != nil && lang == "go" {
				v, _ := strconv.ParseFloat(m[3], 64)
				out[lang][m[1]] = append(out[lang][m[1]], v)
			}
		}
		fh.Close()
	}
	return out, nil
}

func num(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 1000:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

func cell(s *Stat) string {
	if s == nil {
		return "–"
	}
	if s.N <= 1 || s.Min == s.Max {
		return num(s.Median)
	}
	return fmt.Sprintf("%s (%s–%s)", num(s.Median), num(s.Min), num(s.Max))
}

func ratioCell(s *Stat, suffix string) string {
	if s == nil {
		return "–"
	}
	if s.N <= 1 || s.Min == s.Max {
		return num(s.Median) + suffix
	}
	return fmt.Sprintf("%s%s (%s–%s)", num(s.Median), suffix, num(s.Min), num(s.Max))
}

func targetCell(r Row) string {
	if r.Target == "" {
		return ""
	}
	if r.TargetMet == nil {
		return r.Target
	}
	if *r.TargetMet {
		return r.Target + ": met"
	}
	return r.Target + ": **not met**"
}

func markdown(rep *Report, command string) string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("# Benchmarks\n\n")
	w("Generated by `%s` on %s. Machine: %d cores, %d GiB (%s). ", command, rep.Date, rep.Machine.CPUs, rep.Machine.MemGiB, rep.Machine.CPUModel)
	w("**Figures are relative**: compare the columns of one run, not runs on different machines.\n\n")
	if rep.Mode == "quick" {
		w("> **Quick mode**: short runs that check the harness; the figures are noisy and not for citing.\n\n")
	}
	w("- **ours**: `examples/inmem`, built with %s.\n", rep.Builds["ours"])
	w("- **Go**: `conformance/testdata/goinmem` (the same in-memory contract on the Vault SDK's `dbplugin.ServeMultiplex`), built with `%s`.\n", rep.Builds["go"])
	w("- **raw tonic**: `bench/raw-tonic`, the same `NewUser` work on a bare tonic server over the same AutoMTLS Unix-socket transport, no framework; built with %s.\n", rep.Builds["raw_tonic"])
	w("- One client for all: the Vault SDK's v5 database client over go-plugin (`conformance.Catalog`, as Vault's catalog launches plugins), Unix socket, AutoMTLS, no snapshot file.\n")
	w("- Rounds: %d; within each round the plugins alternate (ours, Go, raw, ours, Go, raw, …). Each cell: median (min–max) over rounds (cold start: over launches). Ratios are taken pair by pair (samples taken next to each other), then summarised the same way.\n", rep.Rounds)
	w("- Parameters: %s.\n\n", params(rep.Params))

	w("| Figure | ours | Go | ours / Go | target | raw tonic | reproduce |\n|---|---|---|---|---|---|---|\n")
	for _, r := range rep.Rows {
		w("| %s (%s) | %s | %s | %s | %s | %s | `%s` |\n", r.Label, r.Unit, cell(r.Ours), cell(r.Go), ratioCell(r.Ratio, "×"), targetCell(r), cell(r.Raw), r.Reproduce)
	}
	for _, r := range rep.Overhead {
		w("| %s | %s | – | – | %s | %s | `%s` |\n", r.Label, ratioCell(r.Ratio, " %"), targetCell(r), cell(r.Raw), r.Reproduce)
	}
	for _, r := range rep.Micro {
		w("| Micro: %s (%s) | %s | %s | %s |  | – | `%s` |\n", r.Label, r.Unit, cell(r.Ours), cell(r.Go), ratioCell(r.Ratio, "×"), r.Reproduce)
	}
	w("\nDefinitions. Cold start: from go-plugin's `starting plugin` log (just before the process is spawned) to its `using plugin` log (the handshake line read and parsed), and to the return of the SDK's `PluginFactoryVersion` (TLS dial, multiplexing probe, first successful `Type`); a fresh process per launch. Latency: sequential `NewUser` calls after warm-up, p50/p99 per round. Throughput: callers looping `NewUser` on one connection for a fixed time, per concurrency level. Memory: a fresh process, `Initialize`d and idle, then N `NewUser` calls at the given concurrency; VmRSS and VmHWM from `/proc/<pid>/status`. Multiplexing: VmRSS after 1 instance (`Initialize` + 1 `NewUser`) and after the rest joined the same process (same calls each). Framework overhead: ours against raw tonic, pair by pair (latency: ours/raw − 1; throughput: raw/ours − 1). `NewUser`: password credential, 2 statements with `{{name}}`, `{{username}}`, `{{password}}`, `{{expiration}}`.\n\n")
	w("Targets are shown as figures, never asserted. Micro-benchmarks: criterion (`plugin-runtime/benches/toolkit.rs`, the `dbplugin::toolkit` template and statements modules) against `go test -bench` (`conformance/bench/micro_test.go`, the SDK's `helper/template` and `dbutil.QueryHelper`).\n")
	w("The full figures with every sample are in the JSON file the script names at the end of its output.\n")
	return b.String()
}

func params(p map[string]any) string {
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%v", k, p[k]))
	}
	return strings.Join(parts, ", ")
}
