package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lamina-project/lamina"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// startJetStream starts an embedded NATS server with JetStream on a fresh
// directory and returns a connection to it; both end with the test.
func startJetStream(t *testing.T) (*natsserver.Server, *nats.Conn) {
	t.Helper()
	ns, err := natsserver.NewServer(&natsserver.Options{
		JetStream: true, StoreDir: t.TempDir(), DontListen: true, NoSigs: true, NoLog: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats not ready")
	}
	nc, err := nats.Connect("", nats.InProcessServer(ns))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		nc.Close()
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	return ns, nc
}

func openTestStore(t *testing.T, opts Options) *Store {
	t.Helper()
	_, nc := startJetStream(t)
	st, err := Open(context.Background(), nc, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return st
}

func newFunction(name, description string) *lamina.Function {
	return &lamina.Function{Configuration: lamina.FunctionConfiguration{FunctionName: name, Description: description}, CodeDigest: "0"}
}

// publish publishes a version of name the way the frontend does.
func publish(t *testing.T, st *Store, name string) *lamina.Function {
	t.Helper()
	v, err := st.PublishVersion(context.Background(), name, func(latest *lamina.Function, next int) (int, error) {
		latest.Configuration.Version = strconv.Itoa(next)
		return 0, nil
	})
	if err != nil {
		t.Fatalf("PublishVersion %s: %v", name, err)
	}
	return v
}

// writeDependents gives function name a version, an alias, a URL, an event
// invoke config, provisioned concurrency and a policy, all marked with tag.
func writeDependents(t *testing.T, st *Store, name, tag string) {
	t.Helper()
	ctx := context.Background()
	v := publish(t, st, name)
	must(t, st.CreateAlias(ctx, name, &lamina.AliasConfiguration{Name: "live", FunctionVersion: v.Configuration.Version, Description: tag}))
	must(t, st.CreateFunctionURL(ctx, &lamina.FunctionURL{URLID: tag, Function: name}))
	must(t, st.PutEventInvokeConfig(ctx, name, "", &lamina.EventInvokeConfig{FunctionArn: tag}))
	must(t, st.PutProvisionedConcurrency(ctx, &ProvisionedConcurrency{Function: name, Qualifier: "live", Requested: 1, LastModified: tag}))
	_, err := st.ChangeFunctionPolicy(ctx, name, "", func(p *lamina.FunctionPolicy) error {
		p.Statements = append(p.Statements, lamina.Permission{Sid: tag})
		return nil
	})
	must(t, err)
}

// requireDependents requires name's dependents to be those writeDependents
// wrote with tag.
func requireDependents(t *testing.T, st *Store, name, tag string) {
	t.Helper()
	ctx := context.Background()
	if v, err := st.GetVersion(ctx, name, 1); err != nil || v.Configuration.Description != tag {
		t.Errorf("version 1 of %s = %+v, %v; want the one of %s", name, v, err, tag)
	}
	if a, err := st.GetAlias(ctx, name, "live"); err != nil || a.Description != tag {
		t.Errorf("alias live of %s = %+v, %v; want the one of %s", name, a, err, tag)
	}
	if u, err := st.GetFunctionURL(ctx, name, ""); err != nil || u.URLID != tag {
		t.Errorf("URL of %s = %+v, %v; want the one of %s", name, u, err, tag)
	}
	if c, err := st.GetEventInvokeConfig(ctx, name, ""); err != nil || c.FunctionArn != tag {
		t.Errorf("event invoke config of %s = %+v, %v; want the one of %s", name, c, err, tag)
	}
	if pc, err := st.GetProvisionedConcurrency(ctx, name, "live"); err != nil || pc.LastModified != tag {
		t.Errorf("provisioned concurrency of %s = %+v, %v; want the one of %s", name, pc, err, tag)
	}
	if p, err := st.GetFunctionPolicy(ctx, name, ""); err != nil || len(p.Statements) != 1 || p.Statements[0].Sid != tag {
		t.Errorf("policy of %s = %+v, %v; want the one of %s", name, p, err, tag)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// overtakeDelete creates function fn ("first") with dependents, removes
// its record as the first half of a DeleteFunction does, and creates fn
// again ("second") before the delete goes on. It returns the removed
// record.
func overtakeDelete(t *testing.T, st *Store) *functionRecord {
	t.Helper()
	ctx := context.Background()
	must(t, st.CreateFunction(ctx, newFunction("fn", "first")))
	// Versions take their description from $LATEST.
	writeDependents(t, st, "fn", "first")
	dead, err := st.functions.remove(ctx, "fn", nil)
	must(t, err)
	must(t, st.CreateFunction(ctx, newFunction("fn", "second")))
	return dead
}

// A delete that removed the function record, then was overtaken by a
// create of the same name and that incarnation's writes, deletes none of
// them when it goes on to delete the function's dependents.
func TestDeleteSparesANewIncarnation(t *testing.T) {
	ctx := context.Background()
	st := openTestStore(t, Options{})
	dead := overtakeDelete(t, st)
	// The new function gets dependents under the same keys, replacing the
	// dead incarnation's.
	writeDependents(t, st, "fn", "second")
	// The second half of the delete.
	for _, d := range st.dependents() {
		must(t, d.removeIncarnation(ctx, "fn", dead.Incarnation))
	}
	requireDependents(t, st, "fn", "second")
	if orphans := st.Orphans(ctx); len(orphans) > 0 {
		t.Errorf("orphans: %v", orphans)
	}
}

// Records a dead incarnation left behind (a delete that failed half-way)
// are never shown, are replaced by the new incarnation's writes, and are
// swept.
func TestRecordsOfADeadIncarnationAreInvisible(t *testing.T) {
	ctx := context.Background()
	st := openTestStore(t, Options{})
	overtakeDelete(t, st)

	if _, err := st.GetVersion(ctx, "fn", 1); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetVersion of a dead incarnation: %v, want ErrNotFound", err)
	}
	if _, err := st.GetAlias(ctx, "fn", "live"); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetAlias of a dead incarnation: %v, want ErrNotFound", err)
	}
	if got := st.ListAliases(ctx, "fn"); len(got) != 0 {
		t.Errorf("ListAliases shows a dead incarnation's: %v", got)
	}
	if got := st.ListVersions(ctx, "fn"); len(got) != 0 {
		t.Errorf("ListVersions shows a dead incarnation's: %v", got)
	}
	if _, err := st.FunctionURLByID("first"); !errors.Is(err, ErrNotFound) {
		t.Errorf("FunctionURLByID of a dead incarnation: %v, want ErrNotFound", err)
	}
	if got := st.ListProvisionedConcurrency(ctx, ""); len(got) != 0 {
		t.Errorf("ListProvisionedConcurrency shows a dead incarnation's: %v", got)
	}
	if _, err := st.GetFunctionPolicy(ctx, "fn", ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetFunctionPolicy of a dead incarnation: %v, want ErrNotFound", err)
	}
	if got := st.Orphans(ctx); len(got) != 6 {
		t.Errorf("orphans = %v, want the 6 records of the dead incarnation", got)
	}
	// The new incarnation's alias takes the key of the dead one's.
	v := publish(t, st, "fn")
	must(t, st.CreateAlias(ctx, "fn", &lamina.AliasConfiguration{Name: "live", FunctionVersion: v.Configuration.Version}))
	n, err := st.SweepOrphans(ctx)
	must(t, err)
	if n != 4 { // URL, event invoke config, provisioned concurrency, policy
		t.Errorf("swept %d records, want 4", n)
	}
	if got := st.Orphans(ctx); len(got) != 0 {
		t.Errorf("orphans after the sweep: %v", got)
	}
	if _, err := st.GetAlias(ctx, "fn", "live"); err != nil {
		t.Errorf("the new incarnation's alias: %v", err)
	}
}

// A delete is conditional on the revision it read: when the record changes
// between the read and the delete, the delete reads again, and deletes the
// new record only if it is still the one to delete.
func TestRemoveIsConditionalOnTheRevisionRead(t *testing.T) {
	ctx := context.Background()
	st := openTestStore(t, Options{})
	must(t, st.CreateFunction(ctx, newFunction("fn", "first")))
	first, _ := st.live(ctx, "fn")
	must(t, st.aliases.create(ctx, "fn.a", &aliasRecord{Incarnation: first}))

	// Another writer replaces the alias with one of another incarnation
	// right after the delete read it.
	calls := 0
	_, err := st.aliases.remove(ctx, "fn.a", func(a *aliasRecord) bool {
		calls++
		if calls == 1 {
			_, err := st.aliases.update(ctx, "fn.a", func(a *aliasRecord) error { a.Incarnation = "other"; return nil })
			must(t, err)
		}
		return a.Incarnation == first
	})
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("remove of a replaced record: %v, want ErrNotFound", err)
	}
	if calls != 2 {
		t.Errorf("the record was looked at %d times, want 2 (a read again after the lost race)", calls)
	}
	if a, err := st.aliases.get(ctx, "fn.a"); err != nil || a.Incarnation != "other" {
		t.Errorf("the replacing record = %+v, %v; want it kept", a, err)
	}

	// DeleteFunction racing an update deletes the function as updated.
	calls = 0
	deleted, err := st.functions.remove(ctx, "fn", func(r *functionRecord) bool {
		calls++
		if calls == 1 {
			_, err := st.UpdateFunction(ctx, "fn", func(f *lamina.Function) error { f.Configuration.Description = "updated"; return nil })
			must(t, err)
		}
		return true
	})
	must(t, err)
	if deleted.Configuration.Description != "updated" || calls != 2 {
		t.Errorf("deleted %q after %d reads; want the updated record after 2", deleted.Configuration.Description, calls)
	}
}

// Concurrent creates, deletes, publishes and aliases of one name leave a
// consistent store: every record belongs to the live incarnation, and the
// successful creates and deletes alternate.
func TestConcurrentCreateDeleteIsConsistent(t *testing.T) {
	ctx := context.Background()
	st := openTestStore(t, Options{})
	var creates, deletes atomic.Int64
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 40 {
				switch (w + i) % 4 {
				case 0:
					if err := st.CreateFunction(ctx, newFunction("fn", fmt.Sprint(w, i))); err == nil {
						creates.Add(1)
					} else if !errors.Is(err, ErrExists) {
						t.Error(err)
					}
				case 1:
					if _, err := st.DeleteFunction(ctx, "fn"); err == nil {
						deletes.Add(1)
					} else if !errors.Is(err, ErrNotFound) {
						t.Error(err)
					}
				case 2:
					_, err := st.PublishVersion(ctx, "fn", func(latest *lamina.Function, next int) (int, error) {
						latest.Configuration.Version = strconv.Itoa(next)
						return 0, nil
					})
					if err != nil && !errors.Is(err, ErrNotFound) {
						t.Error(err)
					}
				case 3:
					err := st.CreateAlias(ctx, "fn", &lamina.AliasConfiguration{Name: "a" + strconv.Itoa(i%3), FunctionVersion: lamina.LatestVersion})
					if err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrExists) {
						t.Error(err)
					}
				}
			}
		}()
	}
	wg.Wait()
	_, err := st.GetFunction(ctx, "fn")
	exists := int64(0)
	if err == nil {
		exists = 1
	}
	if creates.Load()-deletes.Load() != exists {
		t.Errorf("%d creates and %d deletes succeeded, and the function exists: %v", creates.Load(), deletes.Load(), err == nil)
	}
	if orphans := st.Orphans(ctx); len(orphans) > 0 {
		t.Errorf("records of dead incarnations: %v", orphans)
	}
	t.Logf("%d creates, %d deletes succeeded", creates.Load(), deletes.Load())
}

// An archive is stored whole or not at all: when the code store is at its
// limit the put fails with ErrCodeStorageExceeded and leaves nothing that
// could be read, and what was stored before stays readable.
func TestPutCodeAtTheLimitLeavesNothingHalfWritten(t *testing.T) {
	ctx := context.Background()
	st := openTestStore(t, Options{CodeMaxBytes: 1 << 20})
	first := random(600 << 10)
	must(t, st.PutCode(ctx, "first", first))
	err := st.PutCode(ctx, "second", random(600<<10))
	if !errors.Is(err, ErrCodeStorageExceeded) {
		t.Fatalf("PutCode over the limit: %v, want ErrCodeStorageExceeded", err)
	}
	if _, _, err := st.OpenCode(ctx, "second"); !errors.Is(err, ErrNotFound) {
		t.Errorf("the failed archive: %v, want ErrNotFound", err)
	}
	got, err := st.ReadCode(ctx, "first")
	if err != nil || !bytes.Equal(got, first) {
		t.Errorf("the first archive: %d bytes, %v", len(got), err)
	}
	// Once there is room again, the same archive stores.
	must(t, st.code.Delete(ctx, "first"))
	must(t, st.PutCode(ctx, "second", random(600<<10)))
}

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// After JetStream reopened its streams, Reopen re-establishes the watches:
// records written and deleted meanwhile (here by another node's store) are
// seen, and later writes are followed again.
func TestReopenFollowsChangesMadeMeanwhile(t *testing.T) {
	ctx := context.Background()
	ns, nc := startJetStream(t)
	st, err := Open(ctx, nc, Options{})
	must(t, err)
	defer st.Close()
	must(t, st.CreateFunction(ctx, newFunction("kept", "")))
	must(t, st.CreateFunction(ctx, newFunction("deleted", "")))

	cfg := *ns.JetStreamConfig()
	must(t, ns.ShutdownJetStream())
	cfg.StoreDir = cfg.StoreDir[:len(cfg.StoreDir)-len("/jetstream")]
	must(t, ns.EnableJetStream(&cfg))

	other, err := Open(ctx, nc, Options{})
	must(t, err)
	defer other.Close()
	must(t, other.CreateFunction(ctx, newFunction("added", "")))
	_, err = other.DeleteFunction(ctx, "deleted")
	must(t, err)

	must(t, st.Reopen(ctx))
	names := func() []string {
		var out []string
		fs, _ := st.ListFunctions(ctx)
		for _, f := range fs {
			out = append(out, f.Configuration.FunctionName)
		}
		return out
	}
	if got := fmt.Sprint(names()); got != "[added kept]" {
		t.Errorf("functions after Reopen = %s, want [added kept]", got)
	}
	must(t, other.CreateFunction(ctx, newFunction("later", "")))
	deadline := time.Now().Add(10 * time.Second)
	for fmt.Sprint(names()) != "[added kept later]" {
		if time.Now().After(deadline) {
			t.Fatalf("a write after Reopen is not followed: %v", names())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Storage failures are told from other errors, and from a stream at its own
// limit.
func TestHealthClassifiesFailures(t *testing.T) {
	h := NewHealth(nil)
	ctx := context.Background()
	if err := h.Check(ctx, ErrNotFound); errors.Is(err, ErrUnavailable) || h.Err() != nil {
		t.Errorf("ErrNotFound counted as a storage failure")
	}
	if err := h.Check(ctx, errors.New("nats: maximum bytes exceeded")); errors.Is(err, ErrUnavailable) {
		t.Errorf("a stream at its own limit counted as a storage failure")
	}
	err := h.Check(ctx, errors.New("write /data/nats/x.blk: no space left on device"))
	var u *UnavailableError
	if !errors.As(err, &u) || !u.Full || h.Err() == nil || !h.NeedsReopen() {
		t.Fatalf("ENOSPC: %v (health %v, reopen %v), want a full, lasting failure", err, h.Err(), h.NeedsReopen())
	}
	recovered := h.Recovered()
	h.Recover()
	select {
	case <-recovered:
	default:
		t.Error("Recover did not wake the waiters")
	}
	if h.Err() != nil || h.NeedsReopen() {
		t.Error("still failed after Recover")
	}
	h.NoteServerLog("Filestore [KV_x] Critical write error: open x: too many open files")
	if h.Err() == nil || !h.NeedsReopen() {
		t.Error("a logged critical write error was not reported")
	}
	h.Recover()
	if err := h.Check(ctx, nats.ErrTimeout); !errors.Is(err, ErrUnavailable) || h.Err() != nil {
		t.Errorf("an unanswered write: %v (health %v), want it refused with storage still available", err, h.Err())
	}
	select {
	case <-h.Suspected():
	default:
		t.Error("an unanswered write did not make storage suspect")
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if err := h.Check(canceled, context.Canceled); errors.Is(err, ErrUnavailable) || h.Err() != nil {
		t.Error("a caller that gave up counted as a storage failure")
	}
}

// TestTable checks a service's table: created records are read back from
// memory on the node that wrote them and, through the watch, on another.
func TestTable(t *testing.T) {
	ctx := context.Background()
	_, nc := startJetStream(t)
	a, err := Open(ctx, nc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(ctx, nc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	type queue struct{ ID, Name string }
	ta, err := OpenTable[queue](ctx, a, "lamina_test_queues", "queue")
	if err != nil {
		t.Fatal(err)
	}
	tb, err := OpenTable[queue](ctx, b, "lamina_test_queues", "queue")
	if err != nil {
		t.Fatal(err)
	}
	must(t, ta.Create(ctx, "jobs.fifo", &queue{ID: "1", Name: "jobs.fifo"}))
	if err := tb.Create(ctx, "jobs.fifo", &queue{ID: "2"}); !errors.Is(err, ErrExists) {
		t.Fatalf("second create: %v", err)
	}
	if q, err := tb.Get(ctx, "jobs.fifo"); err != nil || q.ID != "1" {
		t.Fatalf("get on b: %+v %v", q, err)
	}
	if _, err := tb.Update(ctx, "jobs.fifo", func(q *queue) error { q.ID = "3"; return nil }); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if q, _ := ta.Get(ctx, "jobs.fifo"); q != nil && q.ID == "3" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a never saw b's update")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := ta.List("jobs", nil); len(got) != 1 || got[0].Name != "jobs.fifo" {
		t.Fatalf("list: %v", got)
	}
	if _, err := ta.Remove(ctx, "jobs.fifo", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ta.Get(ctx, "jobs.fifo"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after remove: %v", err)
	}
}
