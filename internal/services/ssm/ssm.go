// Package ssm is the part of AWS Systems Manager's Parameter Store that
// deploy tools use (JSON 1.1, X-Amz-Target AmazonSSM.*, signing name
// "ssm"): String and StringList parameters, put, read and deleted one or
// ten at a time, kept in the store (store.Table, so every node of a
// cluster serves them). CDK's bootstrap stack keeps its version in one
// (/cdk-bootstrap/<qualifier>/version) and `cdk deploy` reads it.
//
// What differs from AWS: SecureString parameters are refused (Lamina has
// no KMS); a parameter keeps only its latest version (a selector name:N
// finds only that one; labels are not supported); policies, tags and
// AllowedPattern are accepted and not applied.
package ssm

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/lamina-project/lamina/internal/awsproto"
	"github.com/lamina-project/lamina/internal/store"
)

// parametersBucket is the store bucket of parameters; part of the on-disk
// format.
const parametersBucket = "lamina_ssm_parameters"

// Bounds of Parameter Store's standard tier.
const (
	// MaxParameters bounds the account's parameters.
	MaxParameters = 10000
	maxValue      = 4096 // bytes
	maxName       = 1011
	maxBatch      = 10 // names of GetParameters and DeleteParameters
	maxLevels     = 15 // of a hierarchical name
)

// Service is the Parameter Store of one account.
type Service struct {
	region, accountID string
	params            *store.Table[parameter]
	now               func() time.Time
}

// parameter is a parameter as it is stored.
type parameter struct {
	Name        string
	Type        string
	Value       string
	Description string `json:",omitempty"`
	DataType    string
	Version     int64
	Modified    time.Time
}

// Open opens the parameters kept in st.
func Open(ctx context.Context, st *store.Store, region, accountID string) (*Service, error) {
	params, err := store.OpenTable[parameter](ctx, st, parametersBucket, "parameter")
	if err != nil {
		return nil, err
	}
	return &Service{region: region, accountID: accountID, params: params, now: time.Now}, nil
}

// API is the service on its wire protocol.
func (s *Service) API() *awsproto.Service {
	api := &awsproto.Service{SigningName: "ssm", TargetPrefix: "AmazonSSM", JSONVersion: "1.1"}
	api.Handle(
		awsproto.Op("PutParameter", s.putParameter),
		awsproto.Op("GetParameter", s.getParameter),
		awsproto.Op("GetParameters", s.getParameters),
		awsproto.Op("DeleteParameter", s.deleteParameter),
		awsproto.Op("DeleteParameters", s.deleteParameters),
	)
	return api
}

func errValidation(format string, args ...any) error {
	return awsproto.Errorf(http.StatusBadRequest, "ValidationException", format, args...)
}

func errNotFound(name string) error {
	return awsproto.Errorf(http.StatusBadRequest, "ParameterNotFound", "Parameter %s not found.", name)
}

// key is a parameter's key in the store: its name, which may hold
// characters store keys may not, encoded.
func key(name string) string { return base64.RawURLEncoding.EncodeToString([]byte(name)) }

var validName = regexp.MustCompile(`^[a-zA-Z0-9_.\-/]+$`)

// checkName refuses a name Parameter Store would.
func checkName(name string) error {
	bare := strings.TrimPrefix(name, "/")
	lower := strings.ToLower(bare)
	switch {
	case name == "" || len(name) > maxName:
		return errValidation("Parameter name must be between 1 and %d characters.", maxName)
	case !validName.MatchString(name):
		return errValidation("Parameter name: can't be prefixed with \"aws\" or \"ssm\" (case-insensitive). It must use only letters, numbers, or the following symbols: . (period), - (hyphen), _ (underscore), / (slash).")
	case strings.HasPrefix(lower, "aws") || strings.HasPrefix(lower, "ssm"):
		return errValidation("Parameter name: can't be prefixed with \"aws\" or \"ssm\" (case-insensitive).")
	case strings.Contains(bare, "/") && !strings.HasPrefix(name, "/"):
		return errValidation("Parameter name must be a fully qualified name.")
	case strings.Count(name, "/") > maxLevels:
		return awsproto.Errorf(http.StatusBadRequest, "HierarchyLevelLimitExceededException",
			"Parameter name hierarchy can have at most %d levels.", maxLevels)
	}
	return nil
}

type putInput struct {
	Name           string
	Value          string
	Type           string
	Description    string
	Overwrite      bool
	DataType       string
	Tier           string
	AllowedPattern string
	Tags           []struct{ Key, Value string }
}

type putOutput struct {
	Version int64
	Tier    string
}

func (s *Service) putParameter(c *awsproto.Call, in *putInput) (*putOutput, error) {
	if err := checkName(in.Name); err != nil {
		return nil, err
	}
	switch {
	case len(in.Value) == 0 || len(in.Value) > maxValue:
		return nil, errValidation("Parameter value must be between 1 and %d bytes (the standard tier's limit).", maxValue)
	case in.Type == "SecureString":
		return nil, errValidation("SecureString parameters are not supported by Lamina (it has no KMS); use String.")
	case in.Type != "" && in.Type != "String" && in.Type != "StringList":
		return nil, errValidation("1 validation error detected: Value '%s' at 'type' failed to satisfy constraint: Member must satisfy enum value set: [SecureString, StringList, String]", in.Type)
	case in.Tier == "Advanced" || in.Tier == "Intelligent-Tiering":
		return nil, errValidation("The %s tier is not supported by Lamina; use Standard.", in.Tier)
	case in.DataType != "" && in.DataType != "text":
		return nil, errValidation("DataType %s is not supported by Lamina; use text.", in.DataType)
	case in.Overwrite && len(in.Tags) > 0:
		return nil, errValidation("Invalid request: tags and overwrite can't be used together. To create a parameter with tags, please remove overwrite flag. To update tags on an existing parameter, please use AddTagsToResource")
	}
	ctx, k := c.Context(), key(in.Name)
	if old, err := s.params.Get(ctx, k); err == nil {
		if !in.Overwrite {
			return nil, awsproto.Errorf(http.StatusBadRequest, "ParameterAlreadyExists", "The parameter already exists. To overwrite this value, set the overwrite option in the request to true.")
		}
		typ := in.Type
		if typ == "" {
			typ = old.Type
		}
		if typ != old.Type {
			return nil, errValidation("The parameter type can't be changed from %s to %s.", old.Type, typ)
		}
		p, err := s.params.Update(ctx, k, func(p *parameter) error {
			p.Value, p.Version, p.Modified = in.Value, p.Version+1, s.now()
			if in.Description != "" {
				p.Description = in.Description
			}
			return nil
		})
		if errors.Is(err, store.ErrNotFound) {
			return nil, errNotFound(in.Name) // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		return &putOutput{Version: p.Version, Tier: "Standard"}, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if in.Type == "" {
		return nil, errValidation("A parameter type is required when you create a parameter.")
	}
	if len(s.params.Keys("")) >= MaxParameters {
		return nil, awsproto.Errorf(http.StatusBadRequest, "ParameterLimitExceeded",
			"You have exceeded the number of parameters for this AWS account (%d). Delete parameters you no longer need.", MaxParameters)
	}
	p := &parameter{Name: in.Name, Type: in.Type, Value: in.Value, Description: in.Description, DataType: "text",
		Version: 1, Modified: s.now()}
	if err := s.params.Create(ctx, k, p); errors.Is(err, store.ErrExists) {
		return nil, awsproto.Errorf(http.StatusBadRequest, "ParameterAlreadyExists", "The parameter already exists. To overwrite this value, set the overwrite option in the request to true.")
	} else if err != nil {
		return nil, err
	}
	return &putOutput{Version: 1, Tier: "Standard"}, nil
}

// parameterOutput is a parameter as GetParameter answers it.
type parameterOutput struct {
	Name             string
	Type             string
	Value            string
	Version          int64
	LastModifiedDate float64 // epoch seconds
	ARN              string
	DataType         string
	Selector         string `json:",omitempty"`
}

func (s *Service) output(p *parameter, selector string) parameterOutput {
	return parameterOutput{Name: p.Name, Type: p.Type, Value: p.Value, Version: p.Version,
		LastModifiedDate: float64(p.Modified.UnixMilli()) / 1000, DataType: p.DataType, Selector: selector,
		ARN: fmt.Sprintf("arn:aws:ssm:%s:%s:parameter/%s", s.region, s.accountID, strings.TrimPrefix(p.Name, "/"))}
}

// find returns the parameter a name (with an optional :version selector)
// names.
func (s *Service) find(ctx context.Context, name string) (*parameterOutput, error) {
	bare, selector, hasSelector := strings.Cut(name, ":")
	p, err := s.params.Get(ctx, key(bare))
	if errors.Is(err, store.ErrNotFound) {
		return nil, errNotFound(name)
	}
	if err != nil {
		return nil, err
	}
	if hasSelector {
		v, err := strconv.ParseInt(selector, 10, 64)
		switch {
		case err != nil:
			return nil, errValidation("Parameter labels are not supported by Lamina; select a version with name:version.")
		case v != p.Version:
			return nil, awsproto.Errorf(http.StatusBadRequest, "ParameterVersionNotFound",
				"Systems Manager could not find version %d of %s. Lamina keeps only a parameter's latest version (%d).", v, bare, p.Version)
		}
		selector = ":" + selector
	}
	out := s.output(p, selector)
	return &out, nil
}

type getInput struct {
	Name           string
	WithDecryption bool
}

type getOutput struct {
	Parameter *parameterOutput
}

func (s *Service) getParameter(c *awsproto.Call, in *getInput) (*getOutput, error) {
	p, err := s.find(c.Context(), in.Name)
	if err != nil {
		return nil, err
	}
	return &getOutput{Parameter: p}, nil
}

type namesInput struct {
	Names          []string
	WithDecryption bool
}

func checkBatch(names []string) error {
	if len(names) == 0 || len(names) > maxBatch {
		return errValidation("1 validation error detected: Value at 'names' failed to satisfy constraint: Member must have length between 1 and %d", maxBatch)
	}
	return nil
}

type getParametersOutput struct {
	Parameters        []parameterOutput
	InvalidParameters []string
}

func (s *Service) getParameters(c *awsproto.Call, in *namesInput) (*getParametersOutput, error) {
	if err := checkBatch(in.Names); err != nil {
		return nil, err
	}
	out := &getParametersOutput{Parameters: []parameterOutput{}, InvalidParameters: []string{}}
	for _, name := range in.Names {
		p, err := s.find(c.Context(), name)
		var ae *awsproto.Error
		switch {
		case errors.As(err, &ae) && ae.Status < 500:
			out.InvalidParameters = append(out.InvalidParameters, name)
		case err != nil:
			return nil, err
		default:
			out.Parameters = append(out.Parameters, *p)
		}
	}
	return out, nil
}

type deleteInput struct{ Name string }

func (s *Service) deleteParameter(c *awsproto.Call, in *deleteInput) (*awsproto.Empty, error) {
	_, err := s.params.Remove(c.Context(), key(in.Name), nil)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errNotFound(in.Name)
	}
	return &awsproto.Empty{}, err
}

type deleteParametersOutput struct {
	DeletedParameters []string
	InvalidParameters []string
}

func (s *Service) deleteParameters(c *awsproto.Call, in *namesInput) (*deleteParametersOutput, error) {
	if err := checkBatch(in.Names); err != nil {
		return nil, err
	}
	out := &deleteParametersOutput{DeletedParameters: []string{}, InvalidParameters: []string{}}
	for _, name := range in.Names {
		_, err := s.params.Remove(c.Context(), key(name), nil)
		switch {
		case errors.Is(err, store.ErrNotFound):
			out.InvalidParameters = append(out.InvalidParameters, name)
		case err != nil:
			return nil, err
		default:
			out.DeletedParameters = append(out.DeletedParameters, name)
		}
	}
	return out, nil
}
