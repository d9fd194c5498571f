package frontend

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/store"
)

// Concurrency: reserved concurrency (Put/Get/DeleteFunctionConcurrency) and
// provisioned concurrency (Put/Get/Delete/ListProvisionedConcurrencyConfig).

// minUnreserved is the concurrency AWS keeps out of reservations.
const minUnreserved = 100

type concurrency struct {
	ReservedConcurrentExecutions *int `json:",omitempty"`
}

func (f *Frontend) putFunctionConcurrency(rq *request) error {
	var in struct{ ReservedConcurrentExecutions *int }
	if err := rq.decode(&in); err != nil {
		return err
	}
	var v lamina.Violations
	if in.ReservedConcurrentExecutions == nil {
		v.AddMissing("reservedConcurrentExecutions")
	} else if *in.ReservedConcurrentExecutions < 0 {
		v.Add(*in.ReservedConcurrentExecutions, "reservedConcurrentExecutions", "Member must have value greater than or equal to 0")
	}
	if err := v.Err(); err != nil {
		return err
	}
	ref, err := f.parseRef(rq.r.PathValue("name"))
	if err != nil {
		return err
	}
	want := *in.ReservedConcurrentExecutions
	ctx := rq.r.Context()
	_, err = f.store.UpdateFunction(ctx, ref.Name, func(fn *lamina.Function) error {
		others := f.store.TotalReserved()
		if fn.ReservedConcurrency != nil {
			others -= *fn.ReservedConcurrency
		}
		if f.cfg.ConcurrencyLimit-others-want < minUnreserved {
			return lamina.ErrInvalidParameter("Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [%d].", minUnreserved)
		}
		if provisioned := f.provisionedTotal(ctx, ref.Name); want < provisioned {
			return lamina.ErrInvalidParameter("Specified ReservedConcurrentExecutions for function is less than the function's provisioned concurrency of %d.", provisioned)
		}
		fn.ReservedConcurrency = &want
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return f.notFound(ref)
	}
	if err != nil {
		return err
	}
	return rq.json(http.StatusOK, concurrency{ReservedConcurrentExecutions: &want})
}

// provisionedTotal returns the provisioned concurrency requested over all
// of a function's versions and aliases.
func (f *Frontend) provisionedTotal(ctx context.Context, function string) int {
	total := 0
	for _, pc := range f.store.ListProvisionedConcurrency(ctx, function) {
		total += pc.Requested
	}
	return total
}

func (f *Frontend) getFunctionConcurrency(rq *request) error {
	ref, err := f.parseRef(rq.r.PathValue("name"))
	if err != nil {
		return err
	}
	fn, err := f.getFunctionVersion(rq.r.Context(), lamina.FunctionRef{Name: ref.Name})
	if err != nil {
		return err
	}
	return rq.json(http.StatusOK, concurrency{ReservedConcurrentExecutions: fn.ReservedConcurrency})
}

func (f *Frontend) deleteFunctionConcurrency(rq *request) error {
	ref, err := f.parseRef(rq.r.PathValue("name"))
	if err != nil {
		return err
	}
	_, err = f.store.UpdateFunction(rq.r.Context(), ref.Name, func(fn *lamina.Function) error {
		fn.ReservedConcurrency = nil
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return f.notFound(ref)
	}
	if err != nil {
		return err
	}
	return rq.noContent(http.StatusNoContent)
}

// provisionedConfig is the API shape of a provisioned concurrency config.
type provisionedConfig struct {
	FunctionArn                              string `json:",omitempty"`
	RequestedProvisionedConcurrentExecutions int
	AvailableProvisionedConcurrentExecutions int
	AllocatedProvisionedConcurrentExecutions int
	Status                                   string
	StatusReason                             string `json:",omitempty"`
	LastModified                             string
}

// provisionedStatus reports a config with what the workers have ready for
// the version it names now.
func (f *Frontend) provisionedStatus(ctx context.Context, pc *store.ProvisionedConcurrency, withARN bool) provisionedConfig {
	allocated, available := f.manager.Provisioned(ctx, pc.Function, pc.Qualifier)
	out := provisionedConfig{
		RequestedProvisionedConcurrentExecutions: pc.Requested,
		AllocatedProvisionedConcurrentExecutions: min(allocated, pc.Requested),
		AvailableProvisionedConcurrentExecutions: min(available, pc.Requested),
		Status:                                   "IN_PROGRESS",
		LastModified:                             pc.LastModified,
	}
	if allocated >= pc.Requested {
		out.Status = "READY"
	}
	if withARN {
		out.FunctionArn = f.functionARN(pc.Function) + ":" + pc.Qualifier
	}
	return out
}

// provisionedTarget returns the function and qualifier of a provisioned
// concurrency request: a published version or an alias that exists.
func (f *Frontend) provisionedTarget(rq *request) (lamina.FunctionRef, error) {
	ref, err := f.requestRef(rq)
	if err != nil {
		return ref, err
	}
	if ref.Qualifier == "" {
		var v lamina.Violations
		v.AddMissing("qualifier")
		return ref, v.Err()
	}
	if ref.Qualifier == lamina.LatestVersion {
		return ref, lamina.ErrInvalidParameter("Provisioned Concurrency Configs cannot be applied to unpublished function versions.")
	}
	_, err = f.getFunctionVersion(rq.r.Context(), ref)
	return ref, err
}

func errNoProvisionedConfig() error {
	return &lamina.Error{Status: http.StatusNotFound, Code: "ProvisionedConcurrencyConfigNotFoundException", Type: "User",
		Message: "No Provisioned Concurrency Config found for this function"}
}

func (f *Frontend) putProvisionedConcurrency(rq *request) error {
	var in struct{ ProvisionedConcurrentExecutions *int }
	if err := rq.decode(&in); err != nil {
		return err
	}
	var v lamina.Violations
	if in.ProvisionedConcurrentExecutions == nil {
		v.AddMissing("provisionedConcurrentExecutions")
	} else if *in.ProvisionedConcurrentExecutions < 1 {
		v.Add(*in.ProvisionedConcurrentExecutions, "provisionedConcurrentExecutions", "Member must have value greater than or equal to 1")
	}
	if err := v.Err(); err != nil {
		return err
	}
	ref, err := f.provisionedTarget(rq)
	if err != nil {
		return err
	}
	ctx := rq.r.Context()
	want := *in.ProvisionedConcurrentExecutions
	others := f.provisionedTotal(ctx, ref.Name)
	if cur, err := f.store.GetProvisionedConcurrency(ctx, ref.Name, ref.Qualifier); err == nil {
		others -= cur.Requested
	}
	if reserved, ok := f.store.Reserved(ref.Name); ok && others+want > reserved {
		return lamina.ErrInvalidParameter("Requested Provisioned Concurrency should not be greater than the reservedConcurrentExecution for function")
	}
	if f.cfg.ConcurrencyLimit-f.store.TotalReserved()-others-want < minUnreserved {
		return lamina.ErrInvalidParameter("Requested Provisioned Concurrency exceeds the account's UnreservedConcurrentExecution minimum of [%d].", minUnreserved)
	}
	pc := &store.ProvisionedConcurrency{Function: ref.Name, Qualifier: ref.Qualifier, Requested: want,
		LastModified: time.Now().UTC().Format("2006-01-02T15:04:05.000+0000")}
	if err := f.store.PutProvisionedConcurrency(ctx, pc); err != nil {
		return err
	}
	out := f.provisionedStatus(ctx, pc, false)
	out.Status = "IN_PROGRESS"
	return rq.json(http.StatusAccepted, out)
}

// getProvisionedConcurrency serves GetProvisionedConcurrencyConfig, and
// ListProvisionedConcurrencyConfigs, which shares its path (?List=ALL).
func (f *Frontend) getProvisionedConcurrency(rq *request) error {
	if rq.r.URL.Query().Get("List") == "ALL" {
		ref, err := f.parseRef(rq.r.PathValue("name"))
		if err != nil {
			return err
		}
		if _, err := f.getFunctionVersion(rq.r.Context(), lamina.FunctionRef{Name: ref.Name}); err != nil {
			return err
		}
		configs := []provisionedConfig{}
		for _, pc := range f.store.ListProvisionedConcurrency(rq.r.Context(), ref.Name) {
			configs = append(configs, f.provisionedStatus(rq.r.Context(), pc, true))
		}
		items, next, err := page(rq, configs)
		if err != nil {
			return err
		}
		return rq.json(http.StatusOK, struct {
			ProvisionedConcurrencyConfigs []provisionedConfig
			NextMarker                    string `json:",omitempty"`
		}{items, next})
	}
	ref, err := f.provisionedTarget(rq)
	if err != nil {
		return err
	}
	pc, err := f.store.GetProvisionedConcurrency(rq.r.Context(), ref.Name, ref.Qualifier)
	if errors.Is(err, store.ErrNotFound) {
		return errNoProvisionedConfig()
	}
	if err != nil {
		return err
	}
	return rq.json(http.StatusOK, f.provisionedStatus(rq.r.Context(), pc, false))
}

func (f *Frontend) deleteProvisionedConcurrency(rq *request) error {
	ref, err := f.provisionedTarget(rq)
	if err != nil {
		return err
	}
	err = f.store.DeleteProvisionedConcurrency(rq.r.Context(), ref.Name, ref.Qualifier)
	if errors.Is(err, store.ErrNotFound) {
		return errNoProvisionedConfig()
	}
	if err != nil {
		return err
	}
	return rq.noContent(http.StatusNoContent)
}
