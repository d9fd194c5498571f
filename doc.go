// Package lamina holds the domain types of Lamina, a self-hosted serverless
// function platform that speaks AWS Lambda's interfaces: function
// configurations as the Lambda API shows them, function names and ARNs,
// limits, and the errors every part reports in AWS's terms.
//
// The parts of the platform live under internal/ (frontend, manager, worker,
// sandbox, runtimes, store); the one binary is built from ./cmd/lamina.
package lamina
