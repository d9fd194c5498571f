package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// cdkAssetBucket is how CDK-synthesized templates name the bootstrap
// stack's asset bucket; `lamina deploy` puts assets in its own bucket and
// names that instead.
const cdkAssetBucket = "cdk-hnb659fds-assets-${AWS::AccountId}-${AWS::Region}"

// assembly is one stack of a CDK cloud assembly (cdk.out).
type assembly struct {
	dir      string
	stack    string
	template []byte
	assets   []cdkAsset
}

type cdkAsset struct {
	path      string // in the assembly
	packaging string // zip or file
	key       string
}

// readAssembly reads a cloud assembly's manifest.json: its stack (the only
// one, or the one named), its template and its file assets.
func readAssembly(dir, want string) (*assembly, error) {
	data, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return nil, fmt.Errorf("%s is not a CDK cloud assembly (cdk.out): %w", dir, err)
	}
	var manifest struct {
		Artifacts map[string]struct {
			Type         string
			Properties   map[string]any
			Dependencies []string
		}
	}
	if err := json.Unmarshal(data, &manifest); err != nil {
		return nil, fmt.Errorf("%s/manifest.json: %w", dir, err)
	}
	var stacks []string
	for id, a := range manifest.Artifacts {
		if a.Type == "aws:cloudformation:stack" {
			stacks = append(stacks, id)
		}
	}
	sort.Strings(stacks)
	var id string
	switch {
	case len(stacks) == 1 && (want == "" || want == stacks[0]):
		id = stacks[0]
	case want != "":
		for _, s := range stacks {
			if s == want {
				id = s
			}
		}
	}
	if id == "" {
		return nil, fmt.Errorf("%s holds the stacks %s: name one with --stack-name", dir, strings.Join(stacks, ", "))
	}
	art := manifest.Artifacts[id]
	asm := &assembly{dir: dir, stack: id}
	if name, ok := art.Properties["stackName"].(string); ok && want == "" {
		asm.stack = name
	}
	templateFile, _ := art.Properties["templateFile"].(string)
	if asm.template, err = os.ReadFile(filepath.Join(dir, templateFile)); err != nil {
		return nil, fmt.Errorf("stack %s's template: %w", id, err)
	}
	for _, dep := range art.Dependencies {
		a := manifest.Artifacts[dep]
		if a.Type != "cdk:asset-manifest" {
			continue
		}
		file, _ := a.Properties["file"].(string)
		if err := asm.readAssets(filepath.Join(dir, file)); err != nil {
			return nil, err
		}
	}
	return asm, nil
}

func (a *assembly) readAssets(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("asset manifest: %w", err)
	}
	var m struct {
		Files map[string]struct {
			Source struct {
				Path      string
				Packaging string
			}
			Destinations map[string]struct{ ObjectKey string }
		}
		DockerImages map[string]any
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if len(m.DockerImages) > 0 {
		return fmt.Errorf("%s: container image assets are not supported by Lamina", path)
	}
	for _, f := range m.Files {
		for _, d := range f.Destinations {
			a.assets = append(a.assets, cdkAsset{path: f.Source.Path, packaging: f.Source.Packaging, key: d.ObjectKey})
			break
		}
	}
	return nil
}

// publish uploads the stack's file assets (not its template, which goes
// in the change set) and rewrites the template to name Lamina's artifact
// bucket, without the bootstrap version check (Lamina needs no bootstrap
// stack for `lamina deploy`).
func (a *assembly) publish(ctx context.Context, up *uploader) error {
	for _, asset := range a.assets {
		if strings.HasSuffix(asset.path, ".template.json") {
			continue
		}
		src := filepath.Join(a.dir, asset.path)
		var data []byte
		var err error
		if asset.packaging == "zip" {
			data, err = packageCode(src)
		} else {
			data, err = os.ReadFile(src)
		}
		if err != nil {
			return fmt.Errorf("asset %s: %w", asset.path, err)
		}
		if err := up.put(ctx, asset.path, asset.key, data); err != nil {
			return err
		}
	}
	var t map[string]any
	if err := json.Unmarshal(a.template, &t); err != nil {
		return fmt.Errorf("stack %s's template: %w", a.stack, err)
	}
	if params, ok := t["Parameters"].(map[string]any); ok {
		delete(params, "BootstrapVersion")
		if len(params) == 0 {
			delete(t, "Parameters")
		}
	}
	if rules, ok := t["Rules"].(map[string]any); ok {
		delete(rules, "CheckBootstrapVersion")
		if len(rules) == 0 {
			delete(t, "Rules")
		}
	}
	out, err := json.MarshalIndent(replaceBucket(t), "", " ")
	if err != nil {
		return err
	}
	a.template = out
	return nil
}

// replaceBucket names the artifact bucket wherever the template names
// CDK's asset bucket.
func replaceBucket(v any) any {
	switch x := v.(type) {
	case map[string]any:
		if sub, ok := x["Fn::Sub"].(string); ok && len(x) == 1 && sub == cdkAssetBucket {
			return artifactBucket
		}
		for k, e := range x {
			x[k] = replaceBucket(e)
		}
	case []any:
		for i, e := range x {
			x[i] = replaceBucket(e)
		}
	}
	return v
}
