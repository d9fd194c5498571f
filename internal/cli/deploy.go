package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cfn "github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/lamina-project/lamina/internal/sdkhttp"
	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"
)

// artifactBucket is the bucket `lamina deploy` uploads code to.
const artifactBucket = "lamina-deploy-artifacts"

type deployFlags struct {
	stack     string
	overrides []string
	dryRun    bool
}

func newDeployCommand(opts *clientOptions) *cobra.Command {
	var f deployFlags
	cmd := &cobra.Command{
		Use:   "deploy TEMPLATE|CDK_OUT --stack-name NAME",
		Short: "Deploy a SAM or CloudFormation template, or a CDK cloud assembly, as a stack",
		Long: `Deploy a SAM or CloudFormation template (YAML or JSON), or a CDK cloud assembly
(the cdk.out directory of ` + "`cdk synth`" + `), as a stack: local code (CodeUri, ContentUri,
Code and Content that name a directory or a zip) is zipped and uploaded to the
bucket ` + artifactBucket + `, the plan (what is added, modified, replaced and
removed) is shown, then applied, resource by resource. A deploy that changes
nothing says so; a failed deploy is rolled back to the stack's previous state.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDeploy(cmd.Context(), cmd, opts, &f, args[0])
		},
	}
	cmd.Flags().StringVar(&f.stack, "stack-name", "", "name of the stack (default: the template's directory name; a CDK assembly's own stack name)")
	cmd.Flags().StringArrayVar(&f.overrides, "parameter-overrides", nil, "template parameter KEY=VALUE (repeatable)")
	cmd.Flags().BoolVar(&f.dryRun, "dry-run", false, "show the plan without applying it")
	return cmd
}

func newDestroyCommand(opts *clientOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "destroy STACK",
		Short: "Remove a stack and every resource it made",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := opts.cloudFormationClient()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if _, err := c.DescribeStacks(ctx, &cfn.DescribeStacksInput{StackName: aws.String(args[0])}); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "Destroying stack %s\n", args[0])
			watch := watchEvents(ctx, c, args[0], w)
			_, err = c.DeleteStack(ctx, &cfn.DeleteStackInput{StackName: aws.String(args[0])})
			watch()
			if err != nil {
				return err
			}
			out, err := c.DescribeStacks(ctx, &cfn.DescribeStacksInput{StackName: aws.String(args[0])})
			if err == nil && len(out.Stacks) > 0 {
				return fmt.Errorf("stack %s is %s: %s", args[0], out.Stacks[0].StackStatus, aws.ToString(out.Stacks[0].StackStatusReason))
			}
			fmt.Fprintf(w, "Stack %s destroyed\n", args[0])
			return nil
		},
	}
}

// cloudFormationClient returns a CloudFormation client for the endpoint.
func (o *clientOptions) cloudFormationClient() (*cfn.Client, error) {
	creds, err := o.credentials()
	if err != nil {
		return nil, err
	}
	return cfn.New(cfn.Options{Region: o.region, BaseEndpoint: aws.String(o.endpoint), Credentials: creds, HTTPClient: sdkhttp.Client(),
		Retryer: o.retryer()}), nil
}

// s3Client returns an S3 client for the endpoint (path-style).
func (o *clientOptions) s3Client() (*s3.Client, error) {
	creds, err := o.credentials()
	if err != nil {
		return nil, err
	}
	return s3.New(s3.Options{Region: o.region, BaseEndpoint: aws.String(o.endpoint), Credentials: creds, HTTPClient: sdkhttp.Client(),
		UsePathStyle: true, Retryer: o.retryer()}), nil
}

func runDeploy(ctx context.Context, cmd *cobra.Command, opts *clientOptions, f *deployFlags, path string) error {
	w := cmd.OutOrStdout()
	info, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("cannot read %s: %w", path, err)
	}
	var body []byte
	if info.IsDir() {
		asm, err := readAssembly(path, f.stack)
		if err != nil {
			return err
		}
		if f.stack == "" {
			f.stack = asm.stack
		}
		uploader, err := newUploader(ctx, opts, w)
		if err != nil {
			return err
		}
		if err := asm.publish(ctx, uploader); err != nil {
			return err
		}
		body = asm.template
	} else {
		if body, err = os.ReadFile(path); err != nil {
			return fmt.Errorf("cannot read %s: %w", path, err)
		}
		if f.stack == "" {
			abs, _ := filepath.Abs(path)
			f.stack = filepath.Base(filepath.Dir(abs))
		}
		if body, err = packageTemplate(ctx, opts, w, path, body); err != nil {
			return err
		}
	}
	params := []cfntypes.Parameter{}
	for _, kv := range f.overrides {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return fmt.Errorf("--parameter-overrides %q: want KEY=VALUE", kv)
		}
		params = append(params, cfntypes.Parameter{ParameterKey: aws.String(k), ParameterValue: aws.String(v)})
	}
	c, err := opts.cloudFormationClient()
	if err != nil {
		return err
	}
	return deployStack(ctx, c, w, f, string(body), params)
}

// deployStack creates a change set, shows it, and executes it, showing each
// resource's progress, as `sam deploy` does.
func deployStack(ctx context.Context, c *cfn.Client, w io.Writer, f *deployFlags, body string, params []cfntypes.Parameter) error {
	typ := cfntypes.ChangeSetTypeCreate
	stacks, err := c.DescribeStacks(ctx, &cfn.DescribeStacksInput{StackName: aws.String(f.stack)})
	switch {
	case err == nil && len(stacks.Stacks) > 0:
		switch stacks.Stacks[0].StackStatus {
		case cfntypes.StackStatusReviewInProgress:
		case cfntypes.StackStatusRollbackComplete:
			// A stack whose creation failed holds nothing: start afresh.
			fmt.Fprintf(w, "Stack %s failed to create before; removing it first\n", f.stack)
			if _, err := c.DeleteStack(ctx, &cfn.DeleteStackInput{StackName: aws.String(f.stack)}); err != nil {
				return err
			}
		default:
			typ = cfntypes.ChangeSetTypeUpdate
		}
	case err != nil && !strings.Contains(err.Error(), "does not exist"):
		return err
	}
	name := fmt.Sprintf("lamina-deploy-%d", time.Now().UnixNano())
	created, err := c.CreateChangeSet(ctx, &cfn.CreateChangeSetInput{StackName: aws.String(f.stack), ChangeSetName: aws.String(name),
		ChangeSetType: typ, TemplateBody: aws.String(body), Parameters: params,
		Capabilities: []cfntypes.Capability{cfntypes.CapabilityCapabilityIam, cfntypes.CapabilityCapabilityAutoExpand}})
	if err != nil {
		return err
	}
	cs, err := c.DescribeChangeSet(ctx, &cfn.DescribeChangeSetInput{ChangeSetName: created.Id})
	if err != nil {
		return err
	}
	if cs.Status == cfntypes.ChangeSetStatusFailed {
		_, _ = c.DeleteChangeSet(ctx, &cfn.DeleteChangeSetInput{ChangeSetName: created.Id})
		if strings.Contains(aws.ToString(cs.StatusReason), "didn't contain changes") {
			fmt.Fprintf(w, "No changes: stack %s is up to date\n", f.stack)
			return nil
		}
		return fmt.Errorf("cannot deploy stack %s: %s", f.stack, aws.ToString(cs.StatusReason))
	}
	printPlan(w, f.stack, cs.Changes)
	if f.dryRun {
		_, err := c.DeleteChangeSet(ctx, &cfn.DeleteChangeSetInput{ChangeSetName: created.Id})
		return err
	}
	fmt.Fprintf(w, "\nDeploying stack %s\n", f.stack)
	watch := watchEvents(ctx, c, f.stack, w)
	_, err = c.ExecuteChangeSet(ctx, &cfn.ExecuteChangeSetInput{ChangeSetName: created.Id})
	watch()
	if err != nil {
		return err
	}
	out, err := c.DescribeStacks(ctx, &cfn.DescribeStacksInput{StackName: aws.String(f.stack)})
	if err != nil {
		return err
	}
	st := out.Stacks[0]
	if st.StackStatus != cfntypes.StackStatusCreateComplete && st.StackStatus != cfntypes.StackStatusUpdateComplete {
		return fmt.Errorf("deploy of stack %s failed and was rolled back (%s): %s", f.stack, st.StackStatus, aws.ToString(st.StackStatusReason))
	}
	fmt.Fprintf(w, "Stack %s: %s\n", f.stack, st.StackStatus)
	if len(st.Outputs) > 0 {
		fmt.Fprintln(w, "\nOutputs:")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, o := range st.Outputs {
			fmt.Fprintf(tw, "  %s\t%s\n", aws.ToString(o.OutputKey), aws.ToString(o.OutputValue))
		}
		tw.Flush()
	}
	return nil
}

// printPlan shows a change set's changes.
func printPlan(w io.Writer, stack string, changes []cfntypes.Change) {
	fmt.Fprintf(w, "Plan for stack %s:\n", stack)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  ACTION\tRESOURCE\tTYPE\tREPLACEMENT")
	for _, ch := range changes {
		rc := ch.ResourceChange
		if rc == nil {
			continue
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", rc.Action, aws.ToString(rc.LogicalResourceId), aws.ToString(rc.ResourceType), rc.Replacement)
	}
	tw.Flush()
}

// watchEvents prints a stack's new events until the returned function is
// called (which prints the last ones).
func watchEvents(ctx context.Context, c *cfn.Client, stack string, w io.Writer) func() {
	seen := map[string]bool{}
	if out, err := c.DescribeStackEvents(ctx, &cfn.DescribeStackEventsInput{StackName: aws.String(stack)}); err == nil {
		for _, ev := range out.StackEvents {
			seen[aws.ToString(ev.EventId)] = true
		}
	}
	show := func() {
		out, err := c.DescribeStackEvents(ctx, &cfn.DescribeStackEventsInput{StackName: aws.String(stack)})
		if err != nil {
			return
		}
		for i := len(out.StackEvents) - 1; i >= 0; i-- {
			ev := out.StackEvents[i]
			if seen[aws.ToString(ev.EventId)] {
				continue
			}
			seen[aws.ToString(ev.EventId)] = true
			line := fmt.Sprintf("  %-28s %-36s %s", ev.ResourceStatus, aws.ToString(ev.LogicalResourceId), aws.ToString(ev.ResourceType))
			if r := aws.ToString(ev.ResourceStatusReason); r != "" && r != "User Initiated" {
				line += "  " + r
			}
			fmt.Fprintln(w, line)
		}
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(300 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				show()
			}
		}
	}()
	return func() {
		close(done)
		<-stopped
		show()
	}
}

// uploader puts deployment packages into the artifact bucket, once per
// content, showing the bytes sent.
type uploader struct {
	s3 *s3.Client
	w  io.Writer
}

func newUploader(ctx context.Context, opts *clientOptions, w io.Writer) (*uploader, error) {
	c, err := opts.s3Client()
	if err != nil {
		return nil, err
	}
	if _, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(artifactBucket)}); err != nil {
		if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(artifactBucket)}); err != nil {
			var ae smithy.APIError
			if !errors.As(err, &ae) || ae.ErrorCode() != "BucketAlreadyOwnedByYou" {
				return nil, err
			}
		}
	}
	return &uploader{s3: c, w: w}, nil
}

// upload stores data under its digest and returns the key.
func (u *uploader) upload(ctx context.Context, what string, data []byte) (string, error) {
	sum := sha256.Sum256(data)
	key := hex.EncodeToString(sum[:]) + ".zip"
	return key, u.put(ctx, what, key, data)
}

// put stores data under key, unless it is there already.
func (u *uploader) put(ctx context.Context, what, key string, data []byte) error {
	if _, err := u.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(artifactBucket), Key: aws.String(key)}); err == nil {
		fmt.Fprintf(u.w, "Code of %s is uploaded already (s3://%s/%s)\n", what, artifactBucket, key)
		return nil
	}
	body := &progressReader{r: bytes.NewReader(data), total: int64(len(data)), w: u.w, what: what, shown: time.Now()}
	_, err := u.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(artifactBucket), Key: aws.String(key), Body: body,
		ContentLength: aws.Int64(int64(len(data)))})
	body.finish()
	if err != nil {
		return fmt.Errorf("cannot upload the code of %s: %w", what, err)
	}
	return nil
}

// progressReader shows the bytes read of an upload, as `aws s3 cp` does.
type progressReader struct {
	r     *bytes.Reader
	total int64
	sent  int64
	w     io.Writer
	what  string
	shown time.Time
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.sent += int64(n)
	if time.Since(p.shown) > 200*time.Millisecond {
		p.shown = time.Now()
		fmt.Fprintf(p.w, "\rUploading %s: %s / %s (%d%%)", p.what, sizeOf(p.sent), sizeOf(p.total), 100*p.sent/max(p.total, 1))
	}
	return n, err
}

// Seek lets the SDK rewind the body to sign or retry it.
func (p *progressReader) Seek(offset int64, whence int) (int64, error) {
	pos, err := p.r.Seek(offset, whence)
	p.sent = pos
	return pos, err
}

func (p *progressReader) finish() {
	fmt.Fprintf(p.w, "\rUploading %s: %s / %s (100%%)\n", p.what, sizeOf(p.total), sizeOf(p.total))
}

func sizeOf(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// codeProperties are the properties that may name local code, by type.
var codeProperties = map[string]string{
	"AWS::Serverless::Function":     "CodeUri",
	"AWS::Serverless::LayerVersion": "ContentUri",
	"AWS::Lambda::Function":         "Code",
	"AWS::Lambda::LayerVersion":     "Content",
}

// packageTemplate uploads the local code a template names, as `aws
// cloudformation package` does, and returns the template with each local
// path replaced in place (so that lines stay where they were): CodeUri and
// ContentUri become s3://bucket/key, Code and Content {S3Bucket, S3Key}.
func packageTemplate(ctx context.Context, opts *clientOptions, w io.Writer, path string, body []byte) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("%s is not a template: %v", path, err)
	}
	if len(doc.Content) == 0 {
		return body, nil
	}
	type local struct {
		node  *yaml.Node
		what  string
		plain bool // Code/Content: the value becomes an object
	}
	var locals []local
	scan := func(section *yaml.Node, kindOf func(id string, r *yaml.Node) string) {
		for i := 0; section != nil && i+1 < len(section.Content); i += 2 {
			id, r := section.Content[i].Value, section.Content[i+1]
			prop := kindOf(id, r)
			if prop == "" {
				continue
			}
			props := child(r, "Properties")
			if prop == "CodeUri" && section.Content[i].Value == "Function" {
				props = r // Globals.Function
			}
			v := child(props, prop)
			if v == nil || v.Kind != yaml.ScalarNode || v.Tag == "!Ref" || strings.HasPrefix(v.Value, "s3://") || v.ShortTag() != "!!str" {
				continue
			}
			what := id
			if props == r && section != nil {
				what = "Globals.Function"
			}
			locals = append(locals, local{node: v, what: what, plain: prop == "Code" || prop == "Content"})
		}
	}
	root := doc.Content[0]
	scan(child(root, "Resources"), func(_ string, r *yaml.Node) string {
		if t := child(r, "Type"); t != nil {
			return codeProperties[t.Value]
		}
		return ""
	})
	scan(child(root, "Globals"), func(id string, _ *yaml.Node) string {
		if id == "Function" {
			return "CodeUri"
		}
		return ""
	})
	if len(locals) == 0 {
		return body, nil
	}
	up, err := newUploader(ctx, opts, w)
	if err != nil {
		return nil, err
	}
	lines := strings.Split(string(body), "\n")
	dir := filepath.Dir(path)
	for _, l := range locals {
		codePath := l.node.Value
		if !filepath.IsAbs(codePath) {
			codePath = filepath.Join(dir, codePath)
		}
		data, err := packageCode(codePath)
		if err != nil {
			return nil, fmt.Errorf("%s (line %d): cannot package %s: %w", l.what, l.node.Line, l.node.Value, err)
		}
		key, err := up.upload(ctx, l.what, data)
		if err != nil {
			return nil, err
		}
		value := `"s3://` + artifactBucket + "/" + key + `"`
		if l.plain {
			value = `{"S3Bucket": "` + artifactBucket + `", "S3Key": "` + key + `"}`
		}
		line := lines[l.node.Line-1]
		start := l.node.Column - 1
		end := scalarEnd(line, start)
		lines[l.node.Line-1] = line[:start] + value + line[end:]
	}
	return []byte(strings.Join(lines, "\n")), nil
}

// scalarEnd finds where the scalar that starts at start ends on its line.
func scalarEnd(line string, start int) int {
	if start < len(line) && (line[start] == '"' || line[start] == '\'') {
		q := line[start]
		for i := start + 1; i < len(line); i++ {
			if line[i] == q {
				return i + 1
			}
		}
		return len(line)
	}
	end := len(line)
	if i := strings.Index(line[start:], " #"); i >= 0 {
		end = start + i
	}
	for _, stop := range []string{",", "}"} { // a JSON or flow value
		if i := strings.Index(line[start:end], stop); i >= 0 {
			end = start + i
		}
	}
	return start + len(strings.TrimRight(line[start:end], " \t\r"))
}

// child returns a mapping's value under key.
func child(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}
