package frontend

import (
	"errors"
	"net/http"

	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/store"
)

// Recursive loop detection's setting (Put/GetFunctionRecursionConfig):
// whether Lamina stops a loop through the function (lamina.MaxRecursion).

type recursionConfig struct {
	RecursiveLoop string
}

func (f *Frontend) putFunctionRecursionConfig(rq *request) error {
	var in struct{ RecursiveLoop *string }
	if err := rq.decode(&in); err != nil {
		return err
	}
	var v lamina.Violations
	switch {
	case in.RecursiveLoop == nil:
		v.AddMissing("recursiveLoop")
	case *in.RecursiveLoop != lamina.RecursiveLoopAllow && *in.RecursiveLoop != lamina.RecursiveLoopTerminate:
		v.Add(*in.RecursiveLoop, "recursiveLoop", "Member must satisfy enum value set: [Allow, Terminate]")
	}
	if err := v.Err(); err != nil {
		return err
	}
	ref, err := f.parseRef(rq.r.PathValue("name"))
	if err != nil {
		return err
	}
	_, err = f.store.UpdateFunction(rq.r.Context(), ref.Name, func(fn *lamina.Function) error {
		fn.RecursiveLoop = *in.RecursiveLoop
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return f.notFound(ref)
	}
	if err != nil {
		return err
	}
	return rq.json(http.StatusOK, recursionConfig{RecursiveLoop: *in.RecursiveLoop})
}

func (f *Frontend) getFunctionRecursionConfig(rq *request) error {
	ref, err := f.parseRef(rq.r.PathValue("name"))
	if err != nil {
		return err
	}
	fn, err := f.getFunctionVersion(rq.r.Context(), lamina.FunctionRef{Name: ref.Name})
	if err != nil {
		return err
	}
	out := recursionConfig{RecursiveLoop: lamina.RecursiveLoopAllow}
	if fn.StopsLoops() {
		out.RecursiveLoop = lamina.RecursiveLoopTerminate
	}
	return rq.json(http.StatusOK, out)
}
