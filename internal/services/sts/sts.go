// Package sts is the part of AWS STS (query protocol, signing name "sts")
// that tools built on the SDKs call before anything else: GetCallerIdentity
// (which account am I in?) and AssumeRole (CDK's bootstrap roles).
//
// Lamina has no IAM. The admin key pair is the account's one user; a role
// only names a session: AssumeRole gives the admin (or an assumed role's
// session) temporary credentials with the admin's scope, valid for the
// duration asked, whatever role it names in the account. Functions'
// credentials cannot call STS (credentials.Allows).
package sts

import (
	"fmt"
	"hash/fnv"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/lamina-project/lamina/internal/awsproto"
	"github.com/lamina-project/lamina/internal/credentials"
)

// AdminUserName is the IAM user name the admin key pair answers to in
// GetCallerIdentity.
const AdminUserName = "lamina-admin"

// Bounds of AssumeRole's DurationSeconds, as STS's.
const (
	minDuration     = 15 * time.Minute
	defaultDuration = time.Hour
)

// Service is the STS API of one account.
type Service struct {
	accountID string
	issuer    *credentials.Issuer
}

// New returns the STS API of account accountID, whose AssumeRole issues
// credentials with issuer.
func New(accountID string, issuer *credentials.Issuer) *Service {
	return &Service{accountID: accountID, issuer: issuer}
}

// API is the service on its wire protocol.
func (s *Service) API() *awsproto.Service {
	api := &awsproto.Service{SigningName: "sts", QueryVersion: "2011-06-15",
		XMLNamespace: "https://sts.amazonaws.com/doc/2011-06-15/"}
	api.Handle(
		awsproto.Op("GetCallerIdentity", s.getCallerIdentity),
		awsproto.Op("AssumeRole", s.assumeRole),
	)
	return api
}

type callerIdentity struct {
	UserId  string
	Account string
	Arn     string
}

func (s *Service) getCallerIdentity(c *awsproto.Call, _ *awsproto.Empty) (*callerIdentity, error) {
	if sess, ok := c.Identity.(*credentials.Session); ok {
		return &callerIdentity{UserId: roleID(sess.Role) + ":" + sess.Function, Account: s.accountID,
			Arn: sess.AssumedRoleARN(s.accountID)}, nil
	}
	return &callerIdentity{UserId: "AIDA" + strings.TrimPrefix(c.AccessKeyID, "LKIA"), Account: s.accountID,
		Arn: "arn:aws:iam::" + s.accountID + ":user/" + AdminUserName}, nil
}

type assumeRoleInput struct {
	RoleArn         string
	RoleSessionName string
	DurationSeconds int
	// ExternalId, Policy, PolicyArns, Tags…: accepted and without effect
	// (Lamina has no IAM policies to narrow).
}

type assumedCredentials struct {
	AccessKeyId     string
	SecretAccessKey string
	SessionToken    string
	Expiration      string
}

type assumedRoleUser struct {
	AssumedRoleId string
	Arn           string
}

type assumeRoleOutput struct {
	Credentials      assumedCredentials
	AssumedRoleUser  assumedRoleUser
	PackedPolicySize int
}

var (
	roleARN     = regexp.MustCompile(`^arn:aws[a-z-]*:iam::(\d{12}):role/(?:[\x21-\x7e]*/)?([\w+=,.@-]{1,64})$`)
	sessionName = regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)
)

func validationError(format string, args ...any) error {
	return awsproto.Errorf(http.StatusBadRequest, "ValidationError", format, args...)
}

func (s *Service) assumeRole(c *awsproto.Call, in *assumeRoleInput) (*assumeRoleOutput, error) {
	m := roleARN.FindStringSubmatch(in.RoleArn)
	switch {
	case m == nil:
		return nil, validationError("%s is invalid", in.RoleArn)
	case !sessionName.MatchString(in.RoleSessionName):
		return nil, validationError("1 validation error detected: Value '%s' at 'roleSessionName' failed to satisfy constraint: "+
			"Member must have length between 2 and 64 and match [\\w+=,.@-]*", in.RoleSessionName)
	case in.DurationSeconds != 0 && (time.Duration(in.DurationSeconds)*time.Second < minDuration ||
		time.Duration(in.DurationSeconds)*time.Second > credentials.SessionLifetime):
		return nil, validationError("1 validation error detected: Value '%d' at 'durationSeconds' failed to satisfy constraint: "+
			"Member must have value between %d and %d", in.DurationSeconds, int(minDuration.Seconds()), int(credentials.SessionLifetime.Seconds()))
	case m[1] != s.accountID:
		return nil, awsproto.Errorf(http.StatusForbidden, "AccessDenied", "User: %s is not authorized to perform: sts:AssumeRole on resource: %s",
			s.callerARN(c), in.RoleArn)
	}
	lifetime := defaultDuration
	if in.DurationSeconds != 0 {
		lifetime = time.Duration(in.DurationSeconds) * time.Second
	}
	tmp := s.issuer.IssueAssumed(in.RoleArn, in.RoleSessionName, lifetime)
	sess := credentials.Session{Function: in.RoleSessionName, Role: in.RoleArn}
	return &assumeRoleOutput{
		Credentials: assumedCredentials{AccessKeyId: tmp.AccessKeyID, SecretAccessKey: tmp.SecretAccessKey,
			SessionToken: tmp.SessionToken, Expiration: tmp.Expiration.UTC().Format(time.RFC3339)},
		AssumedRoleUser: assumedRoleUser{AssumedRoleId: roleID(in.RoleArn) + ":" + in.RoleSessionName,
			Arn: sess.AssumedRoleARN(s.accountID)},
	}, nil
}

// callerARN is the ARN of the request's caller.
func (s *Service) callerARN(c *awsproto.Call) string {
	if sess, ok := c.Identity.(*credentials.Session); ok {
		return sess.AssumedRoleARN(s.accountID)
	}
	return "arn:aws:iam::" + s.accountID + ":user/" + AdminUserName
}

// roleID is a role's unique ID as STS shows it (AROA…): Lamina keeps no
// roles, so it is derived from the role's ARN, the same every time.
func roleID(arn string) string {
	h := fnv.New64a()
	h.Write([]byte(arn))
	return fmt.Sprintf("AROA%016X", h.Sum64())
}
