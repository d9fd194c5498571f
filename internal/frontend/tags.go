package frontend

import (
	"errors"
	"net/http"
	"strings"

	"github.com/lamina-project/lamina"
	"github.com/lamina-project/lamina/internal/store"
)

type tagResourceInput struct {
	Tags map[string]string
}

type listTagsOutput struct {
	Tags map[string]string
}

// validateTags applies AWS's tag rules: at most 50, keys of 1–128 characters
// not starting with "aws:", values of at most 256.
func validateTags(tags map[string]string) error {
	if len(tags) > lamina.MaxTags {
		return lamina.ErrInvalidParameter("Number of tags exceeds resource tag limit.")
	}
	for k, v := range tags {
		switch {
		case k == "" || len(k) > 128:
			return lamina.ErrInvalidParameter("Tag keys must be between 1 and 128 characters: %q", k)
		case len(v) > 256:
			return lamina.ErrInvalidParameter("Tag values must be at most 256 characters: key %q", k)
		case strings.HasPrefix(strings.ToLower(k), "aws:"):
			return lamina.ErrInvalidParameter("Tag keys starting with 'aws:' are reserved for AWS: %q", k)
		}
	}
	return nil
}

// taggedFunction returns the name of the function whose ARN is the {arn} of a
// tagging request.
func (f *Frontend) taggedFunction(rq *request) (string, error) {
	arn := rq.r.PathValue("arn")
	region, account, name, qualifier, ok := lamina.ParseFunctionARN(arn)
	if !ok || qualifier != "" {
		var v lamina.Violations
		v.Add(arn, "resource", "Member must satisfy regular expression pattern: arn:(aws[a-zA-Z-]*):lambda:[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\\d{1}:\\d{12}:function:[a-zA-Z0-9-_]+")
		return "", v.Err()
	}
	if region != f.cfg.Region || account != f.cfg.AccountID {
		return "", lamina.ErrNotFound("Function not found: %s", arn)
	}
	return name, nil
}

// updateTags applies change to the tags of the function a tagging request
// names.
func (f *Frontend) updateTags(rq *request, change func(tags map[string]string) error) error {
	name, err := f.taggedFunction(rq)
	if err != nil {
		return err
	}
	_, err = f.store.UpdateFunction(rq.r.Context(), name, func(fn *lamina.Function) error {
		if fn.Tags == nil {
			fn.Tags = map[string]string{}
		}
		return change(fn.Tags)
	})
	if errors.Is(err, store.ErrNotFound) {
		return f.notFound(lamina.FunctionRef{Name: name})
	}
	if err != nil {
		return err
	}
	return rq.noContent(http.StatusNoContent)
}

func (f *Frontend) tagResource(rq *request) error {
	var in tagResourceInput
	if err := rq.decode(&in); err != nil {
		return err
	}
	if len(in.Tags) == 0 {
		var v lamina.Violations
		v.AddMissing("tags")
		return v.Err()
	}
	if err := validateTags(in.Tags); err != nil {
		return err
	}
	return f.updateTags(rq, func(tags map[string]string) error {
		merged := make(map[string]string, len(tags)+len(in.Tags))
		for k, v := range tags {
			merged[k] = v
		}
		for k, v := range in.Tags {
			merged[k] = v
		}
		if err := validateTags(merged); err != nil {
			return err
		}
		for k, v := range in.Tags {
			tags[k] = v
		}
		return nil
	})
}

func (f *Frontend) untagResource(rq *request) error {
	keys := rq.r.URL.Query()["tagKeys"]
	if len(keys) == 0 {
		var v lamina.Violations
		v.AddMissing("tagKeys")
		return v.Err()
	}
	return f.updateTags(rq, func(tags map[string]string) error {
		for _, k := range keys {
			delete(tags, k)
		}
		return nil
	})
}

func (f *Frontend) listTags(rq *request) error {
	name, err := f.taggedFunction(rq)
	if err != nil {
		return err
	}
	fn, err := f.getFunctionVersion(rq.r.Context(), lamina.FunctionRef{Name: name})
	if err != nil {
		return err
	}
	out := listTagsOutput{Tags: fn.Tags}
	if out.Tags == nil {
		out.Tags = map[string]string{}
	}
	return rq.json(http.StatusOK, out)
}
