package lamina

// HTTPAPI is an HTTP API: a route table that maps requests on Lamina's HTTP
// listener to functions, as Amazon API Gateway HTTP APIs do (payload format
// 2.0, a $default stage).
type HTTPAPI struct {
	APIID          string
	Name           string
	StageVariables map[string]string `json:",omitempty"`
	Routes         []Route
	CreatedDate    string
}

// Route maps a route key — "METHOD /path" with {param} and {proxy+}
// segments, ANY for every method, or $default — to a function ($LATEST, a
// version or an alias).
type Route struct {
	RouteKey  string
	Function  string
	Qualifier string `json:",omitempty"`
}
