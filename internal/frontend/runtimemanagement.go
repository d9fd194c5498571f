package frontend

import (
	"errors"
	"net/http"

	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/store"
)

// Runtime management configs are stored and returned as Lambda does. Lamina
// runs one version of each runtime, the one built into it, which changes
// when Lamina is upgraded: Auto and FunctionUpdate both mean that, and
// Manual may only name that version.

type runtimeManagementOutput struct {
	UpdateRuntimeOn   string
	RuntimeVersionArn string `json:",omitempty"`
	FunctionArn       string
}

// getRuntimeManagementConfig answers for $LATEST (unqualified) or a
// published version, which keeps the config it was published with.
func (f *Frontend) getRuntimeManagementConfig(rq *request) error {
	fn, err := f.lookup(rq)
	if err != nil {
		return err
	}
	out := runtimeManagementOutput{UpdateRuntimeOn: "Auto", FunctionArn: fn.Configuration.FunctionArn}
	if fn.Configuration.Version != lamina.LatestVersion {
		out.FunctionArn += ":" + fn.Configuration.Version
	}
	if rm := fn.RuntimeManagement; rm != nil {
		out.UpdateRuntimeOn, out.RuntimeVersionArn = rm.UpdateRuntimeOn, rm.RuntimeVersionArn
	}
	return rq.json(http.StatusOK, out)
}

func (f *Frontend) putRuntimeManagementConfig(rq *request) error {
	var in lamina.RuntimeManagementConfig
	if err := rq.decode(&in); err != nil {
		return err
	}
	var v lamina.Violations
	switch in.UpdateRuntimeOn {
	case "":
		v.AddMissing("updateRuntimeOn")
	case "Auto", "FunctionUpdate", "Manual":
	default:
		v.Add(in.UpdateRuntimeOn, "updateRuntimeOn", "Member must satisfy enum value set: [Auto, Manual, FunctionUpdate]")
	}
	if err := v.Err(); err != nil {
		return err
	}
	current := lamina.RuntimeVersionARN(f.cfg.Region)
	switch {
	case in.UpdateRuntimeOn == "Manual" && in.RuntimeVersionArn == "":
		return lamina.ErrInvalidParameter("RuntimeVersionArn is required when UpdateRuntimeOn is Manual.")
	case in.UpdateRuntimeOn != "Manual" && in.RuntimeVersionArn != "":
		return lamina.ErrInvalidParameter("RuntimeVersionArn can only be given when UpdateRuntimeOn is Manual.")
	case in.RuntimeVersionArn != "" && in.RuntimeVersionArn != current:
		return lamina.ErrInvalidParameter("Lamina runs one version of each runtime, %s, and cannot pin %s.", current, in.RuntimeVersionArn)
	}
	ref, err := f.requestRef(rq)
	if err != nil {
		return err
	}
	if ref.Qualifier != "" && ref.Qualifier != lamina.LatestVersion {
		return lamina.ErrInvalidParameter("Lamina keeps the runtime management config of $LATEST; published version %s keeps the config it was published with.", ref.Qualifier)
	}
	fn, err := f.store.UpdateFunction(rq.r.Context(), ref.Name, func(fn *lamina.Function) error {
		fn.RuntimeManagement = &in
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return f.notFound(ref)
	} else if err != nil {
		return err
	}
	return rq.json(http.StatusOK, runtimeManagementOutput{UpdateRuntimeOn: in.UpdateRuntimeOn, RuntimeVersionArn: in.RuntimeVersionArn,
		FunctionArn: fn.Configuration.FunctionArn})
}
