package frontend

import (
	"errors"
	"net/http"

	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/runtimes"
)

// Runtimes is what the frontend asks about the node's runtimes: the set of
// interpreters the node found, seen from the frontend.
type Runtimes interface {
	// Check returns nil when the node runs functions of runtime on arch,
	// else an error whose text names what it runs.
	Check(runtime, arch string) error
	// Describe tells what the node runs.
	Describe() runtimes.Description
}

// checkRunnable refuses a runtime and architecture the node cannot run, as
// InvalidParameterValueException.
func (f *Frontend) checkRunnable(runtime, arch string) error {
	if err := f.runtimes.Check(runtime, arch); err != nil {
		var ue *runtimes.UnavailableError
		if errors.As(err, &ue) {
			return lamina.ErrInvalidParameter("%s", ue.Message)
		}
		return err
	}
	return nil
}

// describeRuntimes answers GET /_lamina/runtimes: the node's runtimes, their
// interpreters and architectures.
func (f *Frontend) describeRuntimes(rq *request) error {
	return rq.json(http.StatusOK, f.runtimes.Describe())
}
