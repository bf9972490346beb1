package conformance

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dbplugin "github.com/hashicorp/vault/sdk/database/dbplugin/v5"
	"google.golang.org/grpc/codes"
)

// envInt reads a positive integer override (for quick local runs).
func envInt(key string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(key)); err == nil && v > 0 {
		return v
	}
	return def
}

type loadUser struct {
	db   int
	name string
}

// runPool runs n jobs with `inflight` goroutines and returns the errors.
func runPool(n, inflight int, job func(i int) error) []error {
	var (
		next atomic.Int64
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	for w := 0; w < inflight; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := job(i); err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("job %d: %w", i, err))
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return errs
}

// 10,000 NewUser calls over 16 multiplex ids with 64 in flight, through the
// SDK client and the Catalog: no errors, no state across ids, and VmRSS back
// within 10 % of its post-warm-up level once the users are deleted.
func TestReliabilityLoad(t *testing.T) {
	const ids = 16
	calls := envInt("RELIABILITY_LOAD_CALLS", 10000)
	inflight := envInt("RELIABILITY_LOAD_INFLIGHT", 64)
	h := newFaultHarness(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	dbs := make([]*DB, ids)
	for i := range dbs {
		dbs[i] = h.openInit(ctx)
	}
	pid := dbs[0].Plugin.Process.PID()
	for _, db := range dbs[1:] {
		if db.Plugin.Process.PID() != pid {
			t.Fatal("logical clients did not share one multiplexed process")
		}
	}

	round := func(n int) ([]loadUser, []error, time.Duration) {
		users := make([]loadUser, n)
		start := time.Now()
		errs := runPool(n, inflight, func(i int) error {
			k := i % ids
			name, _, err := h.newUser(ctx, dbs[k], fmt.Sprintf("r%d", k))
			users[i] = loadUser{db: k, name: name}
			return err
		})
		return users, errs, time.Since(start)
	}
	deleteAll := func(users []loadUser) []error {
		return runPool(len(users), inflight, func(i int) error {
			u := users[i]
			_, err := dbs[u.db].DeleteUser(ctx, dbplugin.DeleteUserRequest{Username: u.name})
			return h.watch.err(err)
		})
	}

	// Warm-up: same shape, a tenth of the calls, then removed.
	warm, errs, _ := round(calls / 10)
	if len(errs) > 0 {
		t.Fatalf("warm-up: %d errors, first: %v", len(errs), errs[0])
	}
	if errs := deleteAll(warm); len(errs) > 0 {
		t.Fatalf("warm-up delete: %d errors, first: %v", len(errs), errs[0])
	}
	time.Sleep(500 * time.Millisecond)
	baseline := rssKB(t, pid)

	users, errs, took := round(calls)
	if len(errs) > 0 {
		t.Fatalf("%d of %d NewUser calls failed, first: %v", len(errs), calls, errs[0])
	}
	peak := rssKB(t, pid)
	t.Logf("load: %d NewUser calls over %d ids, %d in flight, in %v (%.0f calls/s); VmRSS after warm-up %d kB, with %d users %d kB",
		calls, ids, inflight, took.Round(time.Millisecond), float64(calls)/took.Seconds(), baseline, calls, peak)

	// No state across ids: a user of id k is unknown to id k+1 and known to k.
	seen := map[string]bool{}
	for _, u := range users {
		if seen[u.name] {
			continue
		}
		seen[u.name] = true
		if len(seen) > 64 {
			break
		}
		other := (u.db + 1) % ids
		_, err := dbs[other].UpdateUser(ctx, dbplugin.UpdateUserRequest{
			Username: u.name, CredentialType: dbplugin.CredentialTypePassword,
			Password: &dbplugin.ChangePassword{NewPassword: secret(t, kindPassword, "Pw-"+randomString(t, 12))},
		})
		if codeOf(err) != codes.InvalidArgument {
			t.Fatalf("user %s of id %d seen by id %d: err %v", u.name, u.db, other, err)
		}
		pw := secret(t, kindPassword, "Pw-"+randomString(t, 12))
		h.watch.add(pw)
		_, err = dbs[u.db].UpdateUser(ctx, dbplugin.UpdateUserRequest{
			Username: u.name, CredentialType: dbplugin.CredentialTypePassword,
			Password: &dbplugin.ChangePassword{NewPassword: pw},
		})
		if h.watch.err(err) != nil {
			t.Fatalf("user %s unknown to its own id %d: %v", u.name, u.db, err)
		}
	}

	if errs := deleteAll(users); len(errs) > 0 {
		t.Fatalf("%d DeleteUser calls failed, first: %v", len(errs), errs[0])
	}
	limit := baseline + baseline/10
	var after int64
	deadline := time.Now().Add(5 * time.Second)
	for {
		after = rssKB(t, pid)
		if after <= limit || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("memory: post-warm-up %d kB, peak %d kB, after delete+settle %d kB (limit %d kB, %+.1f%%)",
		baseline, peak, after, limit, 100*float64(after-baseline)/float64(baseline))
	if after > limit {
		t.Errorf("VmRSS %d kB not within 10%% of the post-warm-up %d kB after the users were deleted", after, baseline)
	}
	mustBeAlive(t, pid)
}
