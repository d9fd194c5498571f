package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/lamina-project/lamina"
)

// addStatement appends a statement called sid to the policy of a function
// qualifier.
func addStatement(ctx context.Context, st *Store, function, qualifier, sid string) error {
	_, err := st.ChangeFunctionPolicy(ctx, function, qualifier, func(p *lamina.FunctionPolicy) error {
		p.Statements = append(p.Statements, lamina.Permission{Sid: sid})
		return nil
	})
	return err
}

// Concurrent changes of a policy that does not exist yet all land: the
// first creates it, the others change what it created.
func TestConcurrentPolicyChangesAllLand(t *testing.T) {
	ctx := context.Background()
	st := openTestStore(t, Options{})
	must(t, st.CreateFunction(ctx, newFunction("fn", "")))
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- addStatement(ctx, st, "fn", "", fmt.Sprint("s", i))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
	p, err := st.GetFunctionPolicy(ctx, "fn", "")
	must(t, err)
	if len(p.Statements) != n {
		t.Errorf("policy has %d statements, want %d: %+v", len(p.Statements), n, p.Statements)
	}
}

// A policy belongs to its qualifier: deleting the alias or the version
// deletes it, so that an alias created again under the same name starts
// without the permissions of the one deleted.
func TestPolicyGoesWithItsAliasAndVersion(t *testing.T) {
	ctx := context.Background()
	st := openTestStore(t, Options{})
	must(t, st.CreateFunction(ctx, newFunction("fn", "")))
	v1, v2 := publish(t, st, "fn"), publish(t, st, "fn")
	must(t, st.CreateAlias(ctx, "fn", &lamina.AliasConfiguration{Name: "live", FunctionVersion: v1.Configuration.Version}))
	for _, q := range []string{"", "live", "1", "2"} {
		must(t, addStatement(ctx, st, "fn", q, "for-"+q))
	}
	if p, err := st.GetFunctionPolicy(ctx, "fn", "live"); err != nil || p.Statements[0].Sid != "for-live" || p.Qualifier != "live" {
		t.Fatalf("policy of the alias = %+v, %v", p, err)
	}

	must(t, st.DeleteAlias(ctx, "fn", "live"))
	must(t, st.CreateAlias(ctx, "fn", &lamina.AliasConfiguration{Name: "live", FunctionVersion: v2.Configuration.Version}))
	if p, err := st.GetFunctionPolicy(ctx, "fn", "live"); !errors.Is(err, ErrNotFound) {
		t.Errorf("the new alias has the deleted one's policy: %+v, %v", p, err)
	}
	must(t, st.DeleteVersion(ctx, "fn", 1))
	if p, err := st.GetFunctionPolicy(ctx, "fn", "1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a deleted version's policy is still there: %+v, %v", p, err)
	}
	for _, q := range []string{"", "2"} {
		if p, err := st.GetFunctionPolicy(ctx, "fn", q); err != nil || !slices.ContainsFunc(p.Statements, func(s lamina.Permission) bool { return s.Sid == "for-"+q }) {
			t.Errorf("policy of %q = %+v, %v; want it kept", q, p, err)
		}
	}

	// A function's delete takes every policy with it.
	_, err := st.DeleteFunction(ctx, "fn")
	must(t, err)
	must(t, st.CreateFunction(ctx, newFunction("fn", "")))
	if p, err := st.GetFunctionPolicy(ctx, "fn", ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("a new function has the deleted one's policy: %+v, %v", p, err)
	}
	if keys := st.policies.keys(""); len(keys) != 0 {
		t.Errorf("policies left in the bucket: %v", keys)
	}
	if err := addStatement(ctx, st, "gone", "", "x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("policy of a missing function: %v, want ErrNotFound", err)
	}
}
