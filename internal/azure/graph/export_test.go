package graph

import "github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

// WithPerRetryPolicy puts p first among the client's per-try policies,
// between azcore's retry policy and the pacer: it sees each answer after
// the pacer has. The wave benchmark uses it to scale the Retry-After that
// azcore sleeps on the wall clock to its scaled clock.
func WithPerRetryPolicy(p policy.Policy) Option {
	return func(o *options) { o.perRetry = append(o.perRetry, p) }
}
