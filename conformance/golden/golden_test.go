// Package golden renders a corpus of inputs through the real Vault SDK helpers and keeps
// the results in testdata/golden/expected.json, which the Rust toolkit's parity test reads.
//
// Run with GOLDEN_UPDATE=1 to rewrite expected.json; without it, the test fails when the
// committed expectations differ from what the SDK produces now.
package golden

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/go-secure-stdlib/parseutil"
	"github.com/hashicorp/go-secure-stdlib/strutil"
	dbplugin "github.com/hashicorp/vault/sdk/database/dbplugin/v5"
	"github.com/hashicorp/vault/sdk/database/helper/connutil"
	"github.com/hashicorp/vault/sdk/database/helper/credsutil"
	"github.com/hashicorp/vault/sdk/database/helper/dbutil"
	"github.com/hashicorp/vault/sdk/helper/template"
	glob "github.com/ryanuber/go-glob"
)

type templateCase struct {
	Name        string `json:"name"`
	Template    string `json:"template"`
	DisplayName string `json:"display_name"`
	RoleName    string `json:"role_name"`
	// Random marks output containing random or clock values: compared by shape.
	Random bool `json:"random,omitempty"`
}

type queryCase struct {
	Template string            `json:"template"`
	Data     map[string]string `json:"data"`
}

type splitCase struct {
	Input string `json:"input"`
	Sep   string `json:"sep"`
}

type credsCase struct {
	DisplayName string `json:"display_name"`
	DisplayLen  int    `json:"display_len"`
	RoleName    string `json:"role_name"`
	RoleLen     int    `json:"role_len"`
	Separator   string `json:"separator"`
	MaxLen      int    `json:"max_len"`
	Case        int    `json:"case"`
}

type alnumCase struct {
	Length  int  `json:"length"`
	Prepend bool `json:"prepend"`
}

type connCase struct {
	Type   string         `json:"type"`
	Config map[string]any `json:"config"`
}

type corpus struct {
	Templates   []templateCase `json:"templates"`
	Queries     []queryCase    `json:"queries"`
	Splits      []splitCase    `json:"splits"`
	Quotes      []string       `json:"quote_identifier"`
	Creds       []credsCase    `json:"credsutil_usernames"`
	Alnum       []alnumCase    `json:"random_alphanumeric"`
	Connections []connCase     `json:"connections"`
	Durations   []any          `json:"durations"`
	TimeLayouts []string       `json:"time_layouts"`
	PathEscapes []string       `json:"path_escape"`
}

// bstr is a string that may hold invalid UTF-8 (byte-level truncation does that): it is
// written as a JSON string when valid, else as {"base64": "..."} so no byte is lost.
type bstr string

func (b bstr) MarshalJSON() ([]byte, error) {
	if utf8.ValidString(string(b)) {
		return marshalNoEscape(string(b))
	}
	return json.Marshal(map[string]string{"base64": base64.StdEncoding.EncodeToString([]byte(b))})
}

func (b *bstr) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err == nil {
		*b = bstr(s)
		return nil
	}
	var m map[string]string
	if err := json.Unmarshal(data, &m); err != nil {
		return err
	}
	raw, err := base64.StdEncoding.DecodeString(m["base64"])
	*b = bstr(raw)
	return err
}

func marshalNoEscape(s string) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

type result struct {
	Output *bstr   `json:"output,omitempty"`
	Error  *string `json:"error,omitempty"`
}

type queryResult struct {
	// Outputs are the distinct results seen over many runs (QueryHelper iterates a Go
	// map, so a result may depend on the order).
	Outputs []bstr `json:"outputs"`
}

type connResult struct {
	URL     string  `json:"url"`
	MaxOpen int     `json:"max_open"`
	MaxIdle int     `json:"max_idle"`
	Error   *string `json:"error,omitempty"`
}

type durationResult struct {
	Nanos int64   `json:"nanos"`
	Error *string `json:"error,omitempty"`
}

type expected struct {
	Templates   []result         `json:"templates"`
	Queries     []queryResult    `json:"queries"`
	Splits      [][]bstr         `json:"splits"`
	Quotes      []string         `json:"quote_identifier"`
	Creds       []bstr           `json:"credsutil_usernames"`
	Alnum       []result         `json:"random_alphanumeric"`
	Connections []connResult     `json:"connections"`
	Durations   []durationResult `json:"durations"`
	// TimeFormats[i][j] is layout i applied to fixed time j.
	TimeFormats [][]string `json:"time_formats"`
	PathEscapes []string   `json:"path_escape"`
}

// FixedTimes are the instants the time layouts are applied to; the Rust test uses the same.
var fixedTimes = []time.Time{
	time.Date(2026, 12, 4, 21, 5, 7, 123456789, time.UTC),
	time.Date(2024, 1, 2, 3, 4, 5, 0, time.FixedZone("", -(7*3600+30*60))),
	time.Date(1999, 7, 9, 12, 0, 0, 500000000, time.FixedZone("", 5*3600+45*60)),
}

func strp(s string) *string { return &s }

func bp(s string) *bstr { b := bstr(s); return &b }

// OpenBao's extra template functions, which the Vault SDK lacks; they are thin wrappers
// over the standard library and go-glob, registered the same way here.
func openBaoFunctions() []template.Opt {
	return []template.Opt{
		template.Function("decode_base64", func(s string) (string, error) {
			b, err := base64.StdEncoding.DecodeString(s)
			return string(b), err
		}),
		template.Function("hex", func(s string) string { return hex.EncodeToString([]byte(s)) }),
		template.Function("decode_hex", func(s string) (string, error) {
			b, err := hex.DecodeString(s)
			return string(b), err
		}),
		template.Function("glob", glob.Glob),
	}
}

func renderTemplate(c templateCase) result {
	opts := append([]template.Opt{template.Template(c.Template)}, openBaoFunctions()...)
	t, err := template.NewTemplate(opts...)
	if err != nil {
		return result{Error: strp(err.Error())}
	}
	out, err := t.Generate(dbplugin.UsernameMetadata{DisplayName: c.DisplayName, RoleName: c.RoleName})
	if err != nil {
		return result{Error: strp(err.Error())}
	}
	return result{Output: bp(out)}
}

// shape hides random and clock characters: letters and digits become '*'.
func shape(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' {
			b[i] = '*'
		}
	}
	return string(b)
}

func compute(t *testing.T, c corpus) expected {
	var e expected
	for _, tc := range c.Templates {
		e.Templates = append(e.Templates, renderTemplate(tc))
	}
	for _, q := range c.Queries {
		seen := map[string]bool{}
		for i := 0; i < 300; i++ {
			seen[dbutil.QueryHelper(q.Template, q.Data)] = true
		}
		var keys []string
		for o := range seen {
			keys = append(keys, o)
		}
		sort.Strings(keys)
		var outs []bstr
		for _, k := range keys {
			outs = append(outs, bstr(k))
		}
		e.Queries = append(e.Queries, queryResult{Outputs: outs})
	}
	for _, s := range c.Splits {
		var row []bstr
		for _, p := range strutil.ParseArbitraryStringSlice(s.Input, s.Sep) {
			row = append(row, bstr(p))
		}
		e.Splits = append(e.Splits, row)
	}
	for _, q := range c.Quotes {
		e.Quotes = append(e.Quotes, dbutil.QuoteIdentifier(q))
	}
	for _, cc := range c.Creds {
		u, err := credsutil.GenerateUsername(
			credsutil.DisplayName(cc.DisplayName, cc.DisplayLen),
			credsutil.RoleName(cc.RoleName, cc.RoleLen),
			credsutil.Separator(cc.Separator),
			credsutil.MaxLength(cc.MaxLen),
			credsutil.Case(credsutil.CaseOp(cc.Case)),
		)
		if err != nil {
			t.Fatalf("GenerateUsername: %v", err)
		}
		e.Creds = append(e.Creds, bstr(u))
	}
	for _, a := range c.Alnum {
		s, err := credsutil.RandomAlphaNumeric(a.Length, a.Prepend)
		if err != nil {
			e.Alnum = append(e.Alnum, result{Error: strp(err.Error())})
		} else {
			e.Alnum = append(e.Alnum, result{Output: bp(s)})
		}
	}
	for _, cc := range c.Connections {
		p := &connutil.SQLConnectionProducer{Type: cc.Type}
		_, err := p.Init(context.Background(), cc.Config, false)
		r := connResult{}
		if err != nil {
			r.Error = strp(err.Error())
		} else {
			r.URL, r.MaxOpen, r.MaxIdle = p.ConnectionURL, p.MaxOpenConnections, p.MaxIdleConnections
		}
		e.Connections = append(e.Connections, r)
	}
	for _, d := range c.Durations {
		v, err := parseutil.ParseDurationSecond(d)
		r := durationResult{Nanos: int64(v)}
		if err != nil {
			r.Nanos = 0
			r.Error = strp(err.Error())
		}
		e.Durations = append(e.Durations, r)
	}
	for _, l := range c.TimeLayouts {
		var row []string
		for _, ft := range fixedTimes {
			row = append(row, ft.Format(l))
		}
		e.TimeFormats = append(e.TimeFormats, row)
	}
	for _, p := range c.PathEscapes {
		e.PathEscapes = append(e.PathEscapes, url.PathEscape(p))
	}
	return e
}

// comparable returns a copy where random outputs are replaced by their shape, so that two
// runs of the SDK compare equal.
func comparable(c corpus, e expected) expected {
	out := e
	out.Templates = append([]result(nil), e.Templates...)
	for i, tc := range c.Templates {
		if tc.Random && out.Templates[i].Output != nil {
			out.Templates[i].Output = bp(shape(string(*out.Templates[i].Output)))
		}
	}
	out.Creds = nil
	for _, u := range e.Creds {
		out.Creds = append(out.Creds, bstr(shape(string(u))))
	}
	out.Alnum = nil
	for _, a := range e.Alnum {
		if a.Output != nil {
			a.Output = bp(shape(string(*a.Output)))
		}
		out.Alnum = append(out.Alnum, a)
	}
	return out
}

func TestGolden(t *testing.T) {
	dir := filepath.Join("..", "testdata", "golden")
	raw, err := os.ReadFile(filepath.Join(dir, "corpus.json"))
	if err != nil {
		t.Fatal(err)
	}
	var c corpus
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatalf("corpus.json: %v", err)
	}
	total := len(c.Templates) + len(c.Queries) + len(c.Splits) + len(c.Quotes) + len(c.Creds) +
		len(c.Alnum) + len(c.Connections) + len(c.Durations) + len(c.TimeLayouts) + len(c.PathEscapes)
	if total < 150 {
		t.Fatalf("corpus has %d inputs, want at least 150", total)
	}
	got := compute(t, c)
	path := filepath.Join(dir, "expected.json")
	if os.Getenv("GOLDEN_UPDATE") == "1" {
		var buf strings.Builder
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if err := enc.Encode(got); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(buf.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d inputs)", path, total)
		return
	}
	raw, err = os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with GOLDEN_UPDATE=1 to create it)", err)
	}
	var want expected
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatalf("expected.json: %v", err)
	}
	a, b := comparable(c, want), comparable(c, got)
	if !reflect.DeepEqual(a, b) {
		report(t, a, b)
	}
}

func report(t *testing.T, want, got expected) {
	wv, gv := reflect.ValueOf(want), reflect.ValueOf(got)
	for i := 0; i < wv.NumField(); i++ {
		name := wv.Type().Field(i).Name
		wf, gf := wv.Field(i), gv.Field(i)
		if reflect.DeepEqual(wf.Interface(), gf.Interface()) {
			continue
		}
		if wf.Len() != gf.Len() {
			t.Errorf("%s: %d committed results, SDK gives %d (run with GOLDEN_UPDATE=1)", name, wf.Len(), gf.Len())
			continue
		}
		for j := 0; j < wf.Len(); j++ {
			if !reflect.DeepEqual(wf.Index(j).Interface(), gf.Index(j).Interface()) {
				w, _ := json.Marshal(wf.Index(j).Interface())
				g, _ := json.Marshal(gf.Index(j).Interface())
				t.Errorf("%s[%d]: committed %s, SDK now gives %s", name, j, w, g)
			}
		}
	}
	if !t.Failed() {
		t.Error(errors.New("expectations differ"))
	}
	_ = fmt.Sprint
}
