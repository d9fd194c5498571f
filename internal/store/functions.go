package store

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/lamina-project/lamina"
)

// versionKey is the key of a published version: "<function>.<n>".
func versionKey(function string, n int) string { return function + "." + strconv.Itoa(n) }

// CreateFunction stores a new function, a new incarnation of its name. It
// returns ErrExists when a function of that name exists.
func (s *Store) CreateFunction(ctx context.Context, f *lamina.Function) error {
	return s.functions.create(ctx, f.Configuration.FunctionName, &functionRecord{Function: *f, Incarnation: uuid.NewString()})
}

// GetFunction returns the $LATEST record of the function called name, or
// ErrNotFound. It is served from memory; the caller must not modify it.
func (s *Store) GetFunction(ctx context.Context, name string) (*lamina.Function, error) {
	f, err := s.functions.get(ctx, name)
	if err != nil {
		return nil, err
	}
	return &f.Function, nil
}

// UpdateFunction applies change to the function's $LATEST record and
// stores the result atomically: if another writer updated the function in
// between, change runs again on a fresh copy. An error from change aborts
// the update and is returned as is. It returns the stored result.
func (s *Store) UpdateFunction(ctx context.Context, name string, change func(*lamina.Function) error) (*lamina.Function, error) {
	f, err := s.functions.update(ctx, name, func(f *functionRecord) error { return change(&f.Function) })
	if err != nil {
		return nil, err
	}
	return &f.Function, nil
}

// DeleteFunction removes the function called name with its versions,
// aliases and configurations, and returns its $LATEST record, or
// ErrNotFound. The delete is conditional on the record it read, and only the
// records of the incarnation it deleted go with it: a function created again
// meanwhile under the same name keeps its own.
func (s *Store) DeleteFunction(ctx context.Context, name string) (*lamina.Function, error) {
	f, err := s.functions.remove(ctx, name, nil)
	if err != nil {
		return nil, err
	}
	for _, d := range s.dependents() {
		if err := d.removeIncarnation(ctx, name, f.Incarnation); err != nil {
			// What is left belongs to a dead incarnation: never shown, and
			// swept later.
			return nil, err
		}
	}
	return &f.Function, nil
}

// ListFunctions returns the $LATEST record of every function, sorted by
// name. The caller must not modify the results.
func (s *Store) ListFunctions(ctx context.Context) ([]*lamina.Function, error) {
	return functions(s.functions.list("", nil)), nil
}

// functions returns the functions of records.
func functions(records []*functionRecord) []*lamina.Function {
	out := make([]*lamina.Function, len(records))
	for i, r := range records {
		out[i] = &r.Function
	}
	return out
}

// ResolveFunction returns the version of function that qualifier names: ""
// or "$LATEST" the latest, a number a published version, anything else an
// alias (its primary version). It returns ErrNotFound for a missing
// function, version or alias.
func (s *Store) ResolveFunction(ctx context.Context, function, qualifier string) (*lamina.Function, error) {
	switch {
	case qualifier == "" || qualifier == lamina.LatestVersion:
		return s.GetFunction(ctx, function)
	case lamina.IsVersionNumber(qualifier):
		n, err := strconv.Atoi(qualifier)
		if err != nil {
			return nil, ErrNotFound
		}
		return s.GetVersion(ctx, function, n)
	}
	alias, err := s.GetAlias(ctx, function, qualifier)
	if err != nil {
		return nil, err
	}
	return s.ResolveFunction(ctx, function, alias.FunctionVersion)
}

// GetVersion returns published version n of function, or ErrNotFound.
func (s *Store) GetVersion(ctx context.Context, function string, n int) (*lamina.Function, error) {
	v, err := getOwned(ctx, s, s.versions, function, versionKey(function, n))
	if err != nil {
		return nil, err
	}
	return &v.Function, nil
}

// ListVersions returns the published versions of function, oldest first.
func (s *Store) ListVersions(ctx context.Context, function string) []*lamina.Function {
	versions := functions(listOwned(ctx, s, s.versions, function))
	// Keys sort as text ("10" before "2"): order by number.
	number := func(f *lamina.Function) int { n, _ := strconv.Atoi(f.Configuration.Version); return n }
	slices.SortFunc(versions, func(a, b *lamina.Function) int { return cmp.Compare(number(a), number(b)) })
	return versions
}

// PublishVersion makes an immutable version of the function's $LATEST
// record, as prepare shapes it from a copy of $LATEST given the new version
// number, unless prepare returns the number of an existing version to reuse
// (a $LATEST that has not changed since it was published). It returns the
// version.
//
// The number is taken first, by a conditional update of $LATEST, so no two
// publishes get the same one; the version is stored under it next. Should
// that fail, the number stays unused.
func (s *Store) PublishVersion(ctx context.Context, function string, prepare func(latest *lamina.Function, next int) (reuse int, err error)) (*lamina.Function, error) {
	var version *functionRecord
	var number int
	var reused *lamina.Function
	_, err := s.functions.update(ctx, function, func(latest *functionRecord) error {
		next := latest.LastVersion + 1
		v := *latest
		reuse, err := prepare(&v.Function, next)
		if err != nil {
			return err
		}
		if reuse > 0 {
			if reused, err = s.GetVersion(ctx, function, reuse); err != nil {
				return err
			}
			return errReuse
		}
		v.Tags, v.LastVersion, v.ReservedConcurrency = nil, 0, nil
		version, number = &v, next
		latest.LastVersion = next
		return nil
	})
	if errors.Is(err, errReuse) {
		return reused, nil
	}
	if err != nil {
		return nil, err
	}
	// A record under this number can only be left by a dead incarnation:
	// numbers are never handed out twice in one.
	if err := createOwned(ctx, s, s.versions, function, versionKey(function, number), version, false); err != nil {
		return nil, err
	}
	return &version.Function, nil
}

// errReuse aborts a publish that found nothing new to publish.
var errReuse = errors.New("store: reuse the last version")

// DeleteVersion removes published version n of function with its policy,
// or returns ErrNotFound. It refuses with a *ReferencedError while aliases
// point at the version.
func (s *Store) DeleteVersion(ctx context.Context, function string, n int) error {
	var users []string
	for _, a := range s.ListAliases(ctx, function) {
		_, extra := a.RoutingConfig.Weights()[strconv.Itoa(n)]
		if a.FunctionVersion == strconv.Itoa(n) || extra {
			users = append(users, a.Name)
		}
	}
	if len(users) > 0 {
		return &ReferencedError{Aliases: users}
	}
	if err := s.deleteFunctionPolicy(ctx, function, strconv.Itoa(n)); err != nil {
		return err
	}
	_, err := removeOwned(ctx, s, s.versions, function, versionKey(function, n))
	return err
}

// ReferencedError is returned when deleting a version that aliases use.
type ReferencedError struct {
	Aliases []string
}

func (e *ReferencedError) Error() string {
	return "store: version referenced by aliases " + strings.Join(e.Aliases, ", ")
}

// Reserved returns the reserved concurrency of function, if it has one.
func (s *Store) Reserved(function string) (int, bool) {
	fn, err := s.GetFunction(context.Background(), function)
	if err != nil || fn.ReservedConcurrency == nil {
		return 0, false
	}
	return *fn.ReservedConcurrency, true
}

// TotalReserved returns the sum of every function's reserved concurrency.
func (s *Store) TotalReserved() int {
	total := 0
	for _, fn := range s.functions.list("", nil) {
		if fn.ReservedConcurrency != nil {
			total += *fn.ReservedConcurrency
		}
	}
	return total
}
