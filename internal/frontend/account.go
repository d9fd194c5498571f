package frontend

import (
	"net/http"

	"github.com/lamina-project/lamina"
)

// totalCodeSizeLimit is the code storage AWS allows per region (75 GB).
const totalCodeSizeLimit = 80530636800

type accountLimit struct {
	TotalCodeSize                  int64
	CodeSizeUnzipped               int64
	CodeSizeZipped                 int64
	ConcurrentExecutions           int
	UnreservedConcurrentExecutions int
}

type accountUsage struct {
	TotalCodeSize int64
	FunctionCount int
}

type accountSettingsOutput struct {
	AccountLimit accountLimit
	AccountUsage accountUsage
}

func (f *Frontend) getAccountSettings(rq *request) error {
	fns, err := f.store.ListFunctions(rq.r.Context())
	if err != nil {
		return err
	}
	// Like Lambda's, the code size in use counts every function version
	// and every layer version.
	usage := accountUsage{FunctionCount: len(fns)}
	for _, layer := range f.store.ListLayers(rq.r.Context()) {
		for _, lv := range f.store.ListLayerVersions(rq.r.Context(), layer) {
			usage.TotalCodeSize += lv.CodeSize
		}
	}
	for _, fn := range fns {
		usage.TotalCodeSize += fn.Configuration.CodeSize
		for _, v := range f.store.ListVersions(rq.r.Context(), fn.Configuration.FunctionName) {
			usage.TotalCodeSize += v.Configuration.CodeSize
		}
	}
	return rq.json(http.StatusOK, accountSettingsOutput{
		AccountLimit: accountLimit{
			TotalCodeSize:                  totalCodeSizeLimit,
			CodeSizeUnzipped:               lamina.MaxUnzippedCodeSize,
			CodeSizeZipped:                 lamina.MaxZippedCodeSize,
			ConcurrentExecutions:           f.cfg.ConcurrencyLimit,
			UnreservedConcurrentExecutions: f.cfg.ConcurrencyLimit - f.store.TotalReserved(),
		},
		AccountUsage: usage,
	})
}
