package frontend

import "github.com/lamina-project/lamina"

// The operations of Lambda's model that Lamina answers with a refusal,
// and why. Each route is AWS's, so every client gets an
// InvalidParameterValueException naming the reason rather than an unknown
// operation. README.md's table of operations repeats these reasons (a test
// checks it against the SDK's model and these routes).
const (
	reasonCapacityProviders = "Lambda Managed Instances: Lamina runs every function on its own nodes; there are no EC2 capacity providers to place functions or scale them on"
	reasonDurable           = "durable functions: Lamina does not checkpoint and replay executions"
	reasonResourcePolicy    = "Lamina manages function policies statement by statement (AddPermission, RemovePermission, GetPolicy), not as whole documents"
)

// refusedRoutes are the routes of the operations Lamina refuses.
var refusedRoutes = []struct{ pattern, name, reason string }{
	{"POST /2025-11-30/capacity-providers", "CreateCapacityProvider", reasonCapacityProviders},
	{"GET /2025-11-30/capacity-providers", "ListCapacityProviders", reasonCapacityProviders},
	{"GET /2025-11-30/capacity-providers/{provider}", "GetCapacityProvider", reasonCapacityProviders},
	{"PUT /2025-11-30/capacity-providers/{provider}", "UpdateCapacityProvider", reasonCapacityProviders},
	{"DELETE /2025-11-30/capacity-providers/{provider}", "DeleteCapacityProvider", reasonCapacityProviders},
	{"GET /2025-11-30/capacity-providers/{provider}/function-versions", "ListFunctionVersionsByCapacityProvider", reasonCapacityProviders},
	{"PUT /2025-11-30/functions/{name}/function-scaling-config", "PutFunctionScalingConfig", reasonCapacityProviders},
	{"GET /2025-11-30/functions/{name}/function-scaling-config", "GetFunctionScalingConfig", reasonCapacityProviders},
	{"POST /2025-12-01/durable-executions/{arn}/checkpoint", "CheckpointDurableExecution", reasonDurable},
	{"GET /2025-12-01/durable-executions/{arn}", "GetDurableExecution", reasonDurable},
	{"GET /2025-12-01/durable-executions/{arn}/history", "GetDurableExecutionHistory", reasonDurable},
	{"GET /2025-12-01/durable-executions/{arn}/state", "GetDurableExecutionState", reasonDurable},
	{"POST /2025-12-01/durable-executions/{arn}/stop", "StopDurableExecution", reasonDurable},
	{"GET /2025-12-01/functions/{name}/durable-executions", "ListDurableExecutionsByFunction", reasonDurable},
	{"POST /2025-12-01/durable-execution-callbacks/{id}/succeed", "SendDurableExecutionCallbackSuccess", reasonDurable},
	{"POST /2025-12-01/durable-execution-callbacks/{id}/fail", "SendDurableExecutionCallbackFailure", reasonDurable},
	{"POST /2025-12-01/durable-execution-callbacks/{id}/heartbeat", "SendDurableExecutionCallbackHeartbeat", reasonDurable},
	{"PUT /2026-07-09/resource-policy/{arn}", "PutResourcePolicy", reasonResourcePolicy},
	{"GET /2026-07-09/resource-policy/{arn}", "GetResourcePolicy", reasonResourcePolicy},
	{"DELETE /2026-07-09/resource-policy/{arn}", "DeleteResourcePolicy", reasonResourcePolicy},
}

// refusal returns the handler of an operation Lamina refuses.
func refusal(name, reason string) func(*request) error {
	return func(*request) error {
		return lamina.ErrInvalidParameter("%s is not supported by Lamina: %s.", name, reason)
	}
}
