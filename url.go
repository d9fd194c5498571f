package lamina

// FunctionURL is the stored record of a function URL: a dedicated HTTP
// endpoint that invokes a function ($LATEST or an alias).
type FunctionURL struct {
	URLID            string // the first label of the URL's host name
	Function         string
	Qualifier        string // an alias; empty for $LATEST
	AuthType         string // NONE or AWS_IAM
	Cors             *Cors  `json:",omitempty"`
	InvokeMode       string // BUFFERED or RESPONSE_STREAM
	CreationTime     string
	LastModifiedTime string
}

// Cors is the cross-origin resource sharing configuration of a function URL.
type Cors struct {
	AllowCredentials bool     `json:",omitempty"`
	AllowHeaders     []string `json:",omitempty"`
	AllowMethods     []string `json:",omitempty"`
	AllowOrigins     []string `json:",omitempty"`
	ExposeHeaders    []string `json:",omitempty"`
	MaxAge           int      `json:",omitempty"`
}
