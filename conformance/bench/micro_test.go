package main

// Micro-benchmarks of the Vault SDK helpers that our toolkit mirrors
// (plugin-runtime/benches/toolkit.rs measures ours on the same inputs):
//
//	go test -run '^$' -bench BenchmarkMicro ./bench
//
// The names after "BenchmarkMicro/" match the criterion benchmark ids.

import (
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/database/dbplugin/v5"
	"github.com/hashicorp/vault/sdk/database/helper/dbutil"
	"github.com/hashicorp/vault/sdk/helper/template"
)

// postgresDefault is the PostgreSQL plugin's default username template.
const postgresDefault = `{{ printf "v-%s-%s-%s-%s" (.DisplayName | truncate 8) (.RoleName | truncate 8) (random 20) (unix_time) | truncate 63 }}`

var (
	microMeta       = dbplugin.UsernameMetadata{DisplayName: "token-benchmark", RoleName: "readonly-role"}
	microStatements = []string{
		`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`,
		`GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{{username}}";`,
	}
	microExpiration = time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	sink            string
)

func BenchmarkMicro(b *testing.B) {
	b.Run("template_parse", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := template.NewTemplate(template.Template(postgresDefault)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("template_render", func(b *testing.B) {
		tpl, err := template.NewTemplate(template.Template(postgresDefault))
		if err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if sink, err = tpl.Generate(microMeta); err != nil {
				b.Fatal(err)
			}
		}
	})
	// What the SQL plugins do per NewUser: the placeholder values, then every statement.
	b.Run("statements_apply", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			m := map[string]string{
				"name":       "v-token-be-readonly-AbCdEfGhIjKlMnOpQrSt-1764842400",
				"username":   "v-token-be-readonly-AbCdEfGhIjKlMnOpQrSt-1764842400",
				"password":   "A1a-Bench-Password-0123456789",
				"expiration": microExpiration.Format("2006-01-02 15:04:05-0700"),
			}
			for _, s := range microStatements {
				sink = dbutil.QueryHelper(s, m)
			}
		}
	})
}
