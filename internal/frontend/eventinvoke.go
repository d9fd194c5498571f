package frontend

import (
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/store"
	"github.com/lamina-project/lamina/internal/targets"
)

// eventInvokeConfigInput is the body of Put/UpdateFunctionEventInvokeConfig.
type eventInvokeConfigInput struct {
	MaximumRetryAttempts     *int
	MaximumEventAgeInSeconds *int
	DestinationConfig        *lamina.DestinationConfig
}

// validate checks the ranges and destinations AWS checks.
func (f *Frontend) validateEventInvokeConfig(in *eventInvokeConfigInput) error {
	var v lamina.Violations
	if in.MaximumRetryAttempts != nil {
		rangeCheck(&v, *in.MaximumRetryAttempts, "maximumRetryAttempts", 0, lamina.MaxMaximumRetryAttempts)
	}
	if in.MaximumEventAgeInSeconds != nil {
		rangeCheck(&v, *in.MaximumEventAgeInSeconds, "maximumEventAgeInSeconds", lamina.MinMaximumEventAgeInSeconds, lamina.MaxMaximumEventAgeInSeconds)
	}
	if err := v.Err(); err != nil {
		return err
	}
	if in.DestinationConfig != nil {
		for _, d := range []*lamina.Destination{in.DestinationConfig.OnSuccess, in.DestinationConfig.OnFailure} {
			if d != nil && d.Destination != "" {
				if err := f.checkTarget(d.Destination, targets.Function, targets.Queue, targets.Topic, targets.Bus); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// checkTarget accepts a destination or dead-letter target Lamina can
// deliver to: a resource of this deployment of one of kinds.
func (f *Frontend) checkTarget(arn string, kinds ...targets.Kind) error {
	kind, err := targets.Parse(f.cfg.Region, f.cfg.AccountID, arn)
	if err != nil {
		return lamina.ErrInvalidParameter("The destination ARN %s is invalid: %v.", arn, err)
	}
	if !slices.Contains(kinds, kind) {
		return lamina.ErrInvalidParameter("The destination ARN %s is invalid: a %s cannot be this kind of destination.", arn, kind)
	}
	return nil
}

// eventInvokeTarget returns the function and qualifier an event invoke
// config request names (checking the function exists) and the config's ARN.
func (f *Frontend) eventInvokeTarget(rq *request) (lamina.FunctionRef, string, error) {
	ref, err := f.requestRef(rq)
	if err != nil {
		return ref, "", err
	}
	if _, err := f.getFunctionVersion(rq.r.Context(), ref); err != nil {
		return ref, "", err
	}
	qualifier := ref.Qualifier
	if qualifier == "" {
		qualifier = lamina.LatestVersion
	}
	return ref, f.functionARN(ref.Name) + ":" + qualifier, nil
}

func (f *Frontend) putEventInvokeConfig(rq *request) error {
	return f.writeEventInvokeConfig(rq, false)
}

func (f *Frontend) updateEventInvokeConfig(rq *request) error {
	return f.writeEventInvokeConfig(rq, true)
}

// writeEventInvokeConfig stores a function's event invoke config: replacing
// it (Put) or changing only the given fields (Update).
func (f *Frontend) writeEventInvokeConfig(rq *request, merge bool) error {
	var in eventInvokeConfigInput
	if err := rq.decode(&in); err != nil {
		return err
	}
	if err := f.validateEventInvokeConfig(&in); err != nil {
		return err
	}
	ref, arn, err := f.eventInvokeTarget(rq)
	if err != nil {
		return err
	}
	ctx := rq.r.Context()
	apply := func(cfg *lamina.EventInvokeConfig) error {
		if in.MaximumRetryAttempts != nil || !merge {
			cfg.MaximumRetryAttempts = in.MaximumRetryAttempts
		}
		if in.MaximumEventAgeInSeconds != nil || !merge {
			cfg.MaximumEventAgeInSeconds = in.MaximumEventAgeInSeconds
		}
		if cfg.DestinationConfig == nil {
			cfg.DestinationConfig = &lamina.DestinationConfig{}
		}
		if in.DestinationConfig != nil {
			if in.DestinationConfig.OnSuccess != nil || !merge {
				cfg.DestinationConfig.OnSuccess = in.DestinationConfig.OnSuccess
			}
			if in.DestinationConfig.OnFailure != nil || !merge {
				cfg.DestinationConfig.OnFailure = in.DestinationConfig.OnFailure
			}
		}
		normalizeDestinations(cfg)
		cfg.LastModified = float64(time.Now().UnixMilli()) / 1000
		return nil
	}
	if merge {
		cfg, err := f.store.UpdateEventInvokeConfig(ctx, ref.Name, ref.Qualifier, apply)
		if errors.Is(err, store.ErrNotFound) {
			return f.noEventInvokeConfig(arn)
		} else if err != nil {
			return err
		}
		return rq.json(http.StatusOK, cfg)
	}
	cfg := &lamina.EventInvokeConfig{FunctionArn: arn, DestinationConfig: &lamina.DestinationConfig{}}
	_ = apply(cfg)
	if err := f.store.PutEventInvokeConfig(ctx, ref.Name, ref.Qualifier, cfg); err != nil {
		return err
	}
	return rq.json(http.StatusOK, cfg)
}

// normalizeDestinations shows both destinations, empty when unset, as AWS
// does.
func normalizeDestinations(cfg *lamina.EventInvokeConfig) {
	if cfg.DestinationConfig == nil {
		cfg.DestinationConfig = &lamina.DestinationConfig{}
	}
	if cfg.DestinationConfig.OnSuccess == nil {
		cfg.DestinationConfig.OnSuccess = &lamina.Destination{}
	}
	if cfg.DestinationConfig.OnFailure == nil {
		cfg.DestinationConfig.OnFailure = &lamina.Destination{}
	}
}

func (f *Frontend) noEventInvokeConfig(arn string) error {
	return lamina.ErrNotFound("The function %s doesn't have an EventInvokeConfig", arn)
}

func (f *Frontend) getEventInvokeConfig(rq *request) error {
	ref, arn, err := f.eventInvokeTarget(rq)
	if err != nil {
		return err
	}
	cfg, err := f.store.GetEventInvokeConfig(rq.r.Context(), ref.Name, ref.Qualifier)
	if errors.Is(err, store.ErrNotFound) {
		return f.noEventInvokeConfig(arn)
	}
	if err != nil {
		return err
	}
	return rq.json(http.StatusOK, cfg)
}

func (f *Frontend) deleteEventInvokeConfig(rq *request) error {
	ref, arn, err := f.eventInvokeTarget(rq)
	if err != nil {
		return err
	}
	err = f.store.DeleteEventInvokeConfig(rq.r.Context(), ref.Name, ref.Qualifier)
	if errors.Is(err, store.ErrNotFound) {
		return f.noEventInvokeConfig(arn)
	}
	if err != nil {
		return err
	}
	return rq.noContent(http.StatusNoContent)
}

func (f *Frontend) listEventInvokeConfigs(rq *request) error {
	ref, err := f.requestRef(rq)
	if err != nil {
		return err
	}
	if _, err := f.getFunctionVersion(rq.r.Context(), lamina.FunctionRef{Name: ref.Name}); err != nil {
		return err
	}
	cfgs, err := f.store.ListEventInvokeConfigs(rq.r.Context(), ref.Name)
	if err != nil {
		return err
	}
	out := struct {
		FunctionEventInvokeConfigs []*lamina.EventInvokeConfig
	}{FunctionEventInvokeConfigs: cfgs}
	if out.FunctionEventInvokeConfigs == nil {
		out.FunctionEventInvokeConfigs = []*lamina.EventInvokeConfig{}
	}
	return rq.json(http.StatusOK, out)
}

// asyncStatus reports a function's async queue (Lamina's own operation,
// for `lamina async`).
func (f *Frontend) asyncStatus(rq *request) error {
	ref, err := f.requestRef(rq)
	if err != nil {
		return err
	}
	if _, err := f.getFunctionVersion(rq.r.Context(), lamina.FunctionRef{Name: ref.Name}); err != nil {
		return err
	}
	st, err := f.async.Status(rq.r.Context(), ref.Name)
	if err != nil {
		return err
	}
	return rq.json(http.StatusOK, st)
}
