package frontend

import (
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// sharedRoutes are operations of the model that another operation's route
// serves, told apart by a query parameter.
var sharedRoutes = map[string]string{
	"GetLayerVersionByArn":              "ListLayers",                      // ?find=LayerVersion
	"ListProvisionedConcurrencyConfigs": "GetProvisionedConcurrencyConfig", // ?List=ALL
}

// modelOperation is an operation of the Lambda model the SDK ships.
type modelOperation struct{ name, method, uri string }

// sdkOperations reads every operation, its method and URI, from the model
// compiled into aws-sdk-go-v2's service/lambda (schemas/schemas.go) at the
// version go.mod requires.
func sdkOperations(t *testing.T) []modelOperation {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/aws/aws-sdk-go-v2/service/lambda").Output()
	if err != nil {
		t.Fatalf("locate the Lambda SDK module: %v", err)
	}
	data, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), "schemas", "schemas.go"))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`Name:\s+"(\w+)",\s*\}, smithy\.ShapeTypeOperation, 0, &smithytraits\.HTTP\{Method: "(\w+)",\s*URI:\s+"([^"]+)"`)
	var ops []modelOperation
	for _, m := range re.FindAllStringSubmatch(string(data), -1) {
		ops = append(ops, modelOperation{m[1], m[2], m[3]})
	}
	if len(ops) < 80 {
		t.Fatalf("read %d operations from the SDK's model; its layout changed", len(ops))
	}
	return ops
}

// readmeOperations reads the README's table of operations: name → status
// ("implemented" or "refused: <reason>").
func readmeOperations(t *testing.T) map[string]string {
	t.Helper()
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	start := strings.Index(text, "<!-- lambda-operations -->")
	end := strings.Index(text, "<!-- /lambda-operations -->")
	if start < 0 || end < start {
		t.Fatal("README.md has no table between <!-- lambda-operations --> and <!-- /lambda-operations -->")
	}
	rows := map[string]string{}
	row := regexp.MustCompile("^\\| `(\\w+)` \\| (.+?) \\|$")
	for _, line := range strings.Split(text[start:end], "\n") {
		if m := row.FindStringSubmatch(line); m != nil {
			if _, dup := rows[m[1]]; dup {
				t.Errorf("README.md lists %s twice", m[1])
			}
			rows[m[1]] = m[2]
		}
	}
	return rows
}

// TestOperationsTable: README.md's table lists every operation of the
// Lambda model the SDK ships, each as Lamina answers it: "implemented" for
// an operation its route serves, "refused: <reason>" with the very reason
// the route refuses it with. Routing the model's method and URI must reach
// that operation.
func TestOperationsTable(t *testing.T) {
	f := New(Config{Region: "us-east-1", AccountID: "123456789012"}, Deps{})
	table := readmeOperations(t)
	model := sdkOperations(t)
	var names []string
	placeholder := regexp.MustCompile(`\{[^}]+\}`)
	for _, op := range model {
		names = append(names, op.name)
		status, listed := table[op.name]
		if !listed {
			t.Errorf("README.md does not list %s", op.name)
			continue
		}
		path, query, _ := strings.Cut(placeholder.ReplaceAllString(op.uri, "x1"), "?")
		req := httptest.NewRequest(op.method, path+"?"+query, nil)
		_, pattern := f.mux.Handler(req)
		served := f.operations[pattern]
		want := op.name
		if shared, ok := sharedRoutes[op.name]; ok {
			want = shared
		}
		if served.name != want {
			t.Errorf("%s %s (%s) reaches %q (route %q), want %s", op.method, op.uri, op.name, served.name, pattern, want)
			continue
		}
		switch {
		case served.refused == "" && status != "implemented":
			t.Errorf("README.md says %s is %q; Lamina implements it", op.name, status)
		case served.refused != "" && status != "refused: "+served.refused:
			t.Errorf("README.md says %s is %q; Lamina refuses it: %s", op.name, status, served.refused)
		}
	}
	for name := range table {
		if !slices.Contains(names, name) {
			t.Errorf("README.md lists %s, which the model does not have", name)
		}
	}
}
