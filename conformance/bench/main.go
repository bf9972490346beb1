// Command bench is the benchmark driver of scripts/bench: it launches our
// in-memory plugin, the Go reference plugin (the SDK's ServeMultiplex) and the
// raw-tonic baseline through the same host code (the conformance Catalog: the
// Vault SDK's v5 client over go-plugin, AutoMTLS, Unix socket), measures them
// in alternation, and merges the micro-benchmark outputs into one table, one
// JSON file and BENCHMARKS.md.
//
//	bench run    -ours BIN -go BIN [-raw BIN] [-quick] [-rounds N] [-only LIST] -out macro.json
//	bench report -macro macro.json [-micro DIR] -json OUT.json [-markdown BENCHMARKS.md]
//
// Figures are printed, never asserted: a missed target is shown, not failed.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "run":
		err = runCmd(os.Args[2:])
	case "report":
		err = reportCmd(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: bench run -ours BIN -go BIN [-raw BIN] [-quick] [-rounds N] [-only cold,latency,throughput,memory,mux] -out FILE")
	fmt.Fprintln(os.Stderr, "       bench report -macro FILE [-micro DIR] -json FILE [-markdown FILE] [-command CMD]")
	os.Exit(2)
}

func runCmd(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	var cfg runConfig
	fs.StringVar(&cfg.ours, "ours", "", "our plugin binary (dist build)")
	fs.StringVar(&cfg.goBin, "go", "", "the Go reference plugin binary")
	fs.StringVar(&cfg.raw, "raw", "", "the raw-tonic baseline binary (optional)")
	fs.BoolVar(&cfg.quick, "quick", false, "short runs to check the harness (noisy figures)")
	fs.IntVar(&cfg.rounds, "rounds", 0, "rounds of A B A B alternation (default 5, quick 2)")
	only := fs.String("only", "", "comma-separated groups: cold,latency,throughput,memory,mux (default all)")
	out := fs.String("out", "", "where to write the measurements (JSON)")
	_ = fs.Parse(args)
	if cfg.ours == "" || cfg.goBin == "" || *out == "" {
		return fmt.Errorf("run needs -ours, -go and -out")
	}
	cfg.groups = map[string]bool{}
	for _, g := range strings.Split(*only, ",") {
		if g = strings.TrimSpace(g); g != "" {
			cfg.groups[g] = true
		}
	}
	cfg.defaults()
	res, err := run(cfg)
	if err != nil {
		return err
	}
	return writeJSON(*out, res)
}

func reportCmd(args []string) error {
	fs := flag.NewFlagSet("report", flag.ExitOnError)
	macro := fs.String("macro", "", "measurements written by `bench run`")
	micro := fs.String("micro", "", "directory of micro-benchmark outputs (rust-N.txt, go-N.txt)")
	jsonOut := fs.String("json", "", "where to write the combined JSON")
	md := fs.String("markdown", "", "where to write BENCHMARKS.md (optional)")
	command := fs.String("command", "scripts/bench", "the command that produced these figures")
	_ = fs.Parse(args)
	if *macro == "" || *jsonOut == "" {
		return fmt.Errorf("report needs -macro and -json")
	}
	return report(*macro, *micro, *jsonOut, *md, *command)
}
