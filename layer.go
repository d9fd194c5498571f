package lamina

// LayerVersion is the stored record of one published layer version.
type LayerVersion struct {
	LayerName               string
	Version                 int
	Description             string   `json:",omitempty"`
	LicenseInfo             string   `json:",omitempty"`
	CompatibleRuntimes      []string `json:",omitempty"`
	CompatibleArchitectures []string `json:",omitempty"`
	CreatedDate             string
	CodeDigest              string // lowercase hex SHA-256 of the zip: its name in the code store
	CodeSha256              string // base64 SHA-256, as the API shows it
	CodeSize                int64
	UnzippedSize            int64
	// Policy holds the statements of the layer version's resource policy.
	Policy         []LayerStatement `json:",omitempty"`
	PolicyRevision string           `json:",omitempty"`
	// Deleted layer versions are gone from the API, but functions that
	// reference them keep running with them.
	Deleted bool `json:",omitempty"`
}

// LayerStatement is one statement of a layer version's policy.
type LayerStatement struct {
	Sid            string
	Effect         string
	Principal      string
	Action         string
	OrganizationId string `json:",omitempty"`
}

// LayerARN returns the ARN of a layer, "arn:aws:lambda:region:acct:layer:name".
func LayerARN(region, accountID, name string) string {
	return "arn:aws:lambda:" + region + ":" + accountID + ":layer:" + name
}
