package e2e

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"
)

// Abuse: hundreds of concurrent CreateFunction, DeleteFunction,
// UpdateFunctionConfiguration, PublishVersion and CreateAlias calls on one
// function name. Every change is conditional on what it read, so the
// answers are consistent with some serial order of the calls, and the store
// keeps nothing of a deleted incarnation of the name.
//
// LAMINA_ABUSE_FULL=1 runs the full scale: 1,000 calls, 200 at a time.

// raceCall is one call of the storm: what it was, when it ran and how it
// ended.
type raceCall struct {
	kind         string
	incarnation  string // for creates and publishes: the value of INCARNATION the function or version got
	version      string // for publishes: the version published
	start, end   time.Time
	err          error
	code, status string
}

func (c *raceCall) ok() bool { return c.err == nil }

func TestCreateDeleteRaces(t *testing.T) {
	t.Parallel()
	calls, workers := 300, 50
	if os.Getenv("LAMINA_ABUSE_FULL") != "" {
		calls, workers = 1000, 200
	}
	ts := startServer(t)
	b := ts.startBystander(t)
	client := ts.Lambda()
	name := "raced-" + strings.ToLower(rand.Text()[:8])
	code := pyAppZip(t)

	kinds := []string{"create", "delete", "update", "publish", "alias"}
	log := make([]*raceCall, calls)
	var wg sync.WaitGroup
	next := make(chan int)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				c := &raceCall{kind: kinds[i%len(kinds)], start: time.Now()}
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				switch c.kind {
				case "create":
					c.incarnation = fmt.Sprintf("c%d", i)
					_, c.err = client.CreateFunction(ctx, &lambda.CreateFunctionInput{
						FunctionName: aws.String(name), Runtime: types.RuntimePython312, Handler: aws.String("app.echo"),
						Role: aws.String(testRole), Code: &types.FunctionCode{ZipFile: code},
						Environment: &types.Environment{Variables: map[string]string{"INCARNATION": c.incarnation}}})
				case "delete":
					_, c.err = client.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String(name)})
				case "update":
					_, c.err = client.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
						FunctionName: aws.String(name), Description: aws.String(fmt.Sprintf("update %d", i))})
				case "publish":
					var v *lambda.PublishVersionOutput
					v, c.err = client.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String(name), Description: aws.String(fmt.Sprint(i))})
					if c.err == nil {
						c.incarnation, c.version = v.Environment.Variables["INCARNATION"], aws.ToString(v.Version)
					}
				case "alias":
					_, c.err = client.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String(name),
						Name: aws.String(fmt.Sprintf("a%d", i%7)), FunctionVersion: aws.String("1")})
				}
				cancel()
				c.end = time.Now()
				var apiErr smithy.APIError
				if errors.As(c.err, &apiErr) {
					c.code = apiErr.ErrorCode()
				}
				log[i] = c
			}
		}()
	}
	started := time.Now()
	for i := range calls {
		next <- i
	}
	close(next)
	wg.Wait()
	t.Logf("%d calls, %d at a time, in %v", calls, workers, time.Since(started).Round(time.Millisecond))
	b.finish(t)

	// Every answer is one the operation can give when it meets another
	// writer: nothing failed in the server.
	allowed := map[string][]string{
		"create":  {"ResourceConflictException"},
		"delete":  {"ResourceNotFoundException"},
		"update":  {"ResourceNotFoundException", "ResourceConflictException"},
		"publish": {"ResourceNotFoundException", "ResourceConflictException"},
		"alias":   {"ResourceNotFoundException", "ResourceConflictException"},
	}
	count := map[string]int{}
	for _, c := range log {
		if c.ok() {
			count[c.kind]++
			continue
		}
		if c.code == "" || !slices.Contains(allowed[c.kind], c.code) || httpStatus(c.err) >= http.StatusInternalServerError {
			t.Errorf("%s: unexpected answer %v", c.kind, c.err)
		}
	}
	t.Logf("succeeded: %v", count)

	// Successful creates and deletes alternate: the name is free, then
	// taken, then free…
	out, err := client.GetFunction(context.Background(), &lambda.GetFunctionInput{FunctionName: aws.String(name)})
	exists := err == nil
	if err != nil {
		requireAPIError(t, err, "ResourceNotFoundException", http.StatusNotFound)
	}
	if want := map[bool]int{false: 0, true: 1}[exists]; count["create"]-count["delete"] != want {
		t.Errorf("%d creates and %d deletes succeeded, and the function exists: %v", count["create"], count["delete"], exists)
	}
	if exists {
		live := out.Configuration.Environment.Variables["INCARNATION"]
		var creator *raceCall
		for _, c := range log {
			if c.kind == "create" && c.incarnation == live {
				creator = c
			}
		}
		if creator == nil || !creator.ok() {
			t.Fatalf("the function that exists (%s) was not created by a create that succeeded: %+v", live, creator)
		}
		// A delete or create that succeeded and began after the surviving
		// create answered would have had to delete it.
		for _, c := range log {
			if c.ok() && c != creator && (c.kind == "delete" || c.kind == "create") && c.start.After(creator.end) {
				t.Errorf("a %s that began after %s was created succeeded, yet %s exists", c.kind, live, live)
			}
		}
		// Every version and alias shown belongs to the live incarnation.
		versions, err := client.ListVersionsByFunction(context.Background(), &lambda.ListVersionsByFunctionInput{FunctionName: aws.String(name)})
		if err != nil {
			t.Fatal(err)
		}
		numbers := map[string]bool{"$LATEST": true}
		for _, v := range versions.Versions {
			numbers[aws.ToString(v.Version)] = true
			if got := v.Environment.Variables["INCARNATION"]; got != live {
				t.Errorf("version %s belongs to incarnation %s, the live one is %s", aws.ToString(v.Version), got, live)
			}
		}
		// No delete took a version of the live incarnation with it.
		for _, c := range log {
			if c.kind == "publish" && c.ok() && c.incarnation == live && !numbers[c.version] {
				t.Errorf("version %s published for %s is gone", c.version, live)
			}
		}
		aliases, err := client.ListAliases(context.Background(), &lambda.ListAliasesInput{FunctionName: aws.String(name)})
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range aliases.Aliases {
			if !numbers[aws.ToString(a.FunctionVersion)] {
				t.Errorf("alias %s points to version %s, which %s does not have", aws.ToString(a.Name), aws.ToString(a.FunctionVersion), live)
			}
		}
		t.Logf("%s survives with %d versions and %d aliases", live, len(versions.Versions), len(aliases.Aliases))
	}

	ts.requireEveryWrite(t)

	// Nothing of a deleted incarnation is left in the store.
	ts.Stop()
	if orphans := ts.InspectStore().Orphans(context.Background()); len(orphans) > 0 {
		t.Errorf("records of deleted incarnations left in the store: %v", orphans)
	}
}
