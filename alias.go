package lamina

import "regexp"

// AliasConfiguration is an alias as the Lambda API shows it.
type AliasConfiguration struct {
	AliasArn        string
	Name            string
	FunctionVersion string
	Description     string
	RoutingConfig   *AliasRoutingConfiguration `json:",omitempty"`
	RevisionId      string
}

// AliasRoutingConfiguration sends a share of an alias's invocations to a
// second version.
type AliasRoutingConfiguration struct {
	AdditionalVersionWeights map[string]float64 `json:",omitempty"`
}

var (
	aliasNameRE = regexp.MustCompile(`^[a-zA-Z0-9-_]{1,128}$`)
	versionRE   = regexp.MustCompile(`^[0-9]+$`)
)

// ValidAliasName reports whether name can name an alias: AWS's pattern
// (?!^[0-9]+$)[a-zA-Z0-9-_]+, at most 128 characters.
func ValidAliasName(name string) bool {
	return aliasNameRE.MatchString(name) && !versionRE.MatchString(name)
}

// IsVersionNumber reports whether a qualifier names a published version.
func IsVersionNumber(qualifier string) bool { return versionRE.MatchString(qualifier) }

// Weights returns the additional version weights, nil when there are none.
func (r *AliasRoutingConfiguration) Weights() map[string]float64 {
	if r == nil {
		return nil
	}
	return r.AdditionalVersionWeights
}

// Pick chooses the version an invocation of the alias runs, given a uniform
// random number r in [0, 1): the additional version with its weight's
// probability, else the primary version.
func (a *AliasConfiguration) Pick(r float64) string {
	for version, weight := range a.RoutingConfig.Weights() {
		if r < weight {
			return version
		}
	}
	return a.FunctionVersion
}
