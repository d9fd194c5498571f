package lamina

// CodeSigningConfig is a code signing configuration as the Lambda API
// returns it.
type CodeSigningConfig struct {
	CodeSigningConfigId  string
	CodeSigningConfigArn string
	Description          string
	AllowedPublishers    AllowedPublishers
	CodeSigningPolicies  CodeSigningPolicies
	LastModified         string
}

// AllowedPublishers lists the signing profiles whose signatures a code
// signing config trusts.
type AllowedPublishers struct {
	SigningProfileVersionArns []string
}

// CodeSigningPolicies says what happens to code whose signature is not
// verified: CodeSigningWarn or CodeSigningEnforce.
type CodeSigningPolicies struct {
	UntrustedArtifactOnDeployment string
}

// Values of CodeSigningPolicies.UntrustedArtifactOnDeployment.
const (
	CodeSigningWarn    = "Warn"
	CodeSigningEnforce = "Enforce"
)
