package credentials

import (
	"errors"

	"github.com/lamina-project/lamina/internal/sigv4"
)

// Keys are the access keys a node accepts: the admin pair, the temporary
// credentials of the execution environments it runs, and those STS
// AssumeRole gave.
type Keys struct {
	Admin  Pair
	Issuer *Issuer
	// Live reports whether an environment of this node exists: credentials
	// end with their environment, and the node that runs an environment is
	// the one that accepts them.
	Live func(environment string) bool
}

// Lookup is a sigv4.Verifier's Lookup: the admin key without a session
// token, or temporary credentials that the Issuer made, that have not
// expired and, for a function's, whose environment lives (their Identity
// is the *Session).
func (k *Keys) Lookup(accessKeyID, sessionToken string) (sigv4.Key, *sigv4.Error) {
	if sessionToken == "" {
		if accessKeyID == k.Admin.AccessKeyID {
			return sigv4.Key{Secret: k.Admin.SecretAccessKey}, nil
		}
		return sigv4.Key{}, sigv4.ErrUnrecognizedClient()
	}
	s, secret, err := k.Issuer.Verify(accessKeyID, sessionToken)
	switch {
	case errors.Is(err, ErrExpired):
		return sigv4.Key{}, sigv4.ErrExpiredToken()
	case err != nil:
		return sigv4.Key{}, sigv4.ErrUnrecognizedClient()
	case !s.Assumed && !k.Live(s.Environment):
		return sigv4.Key{}, sigv4.ErrExpiredToken()
	}
	return sigv4.Key{Secret: secret, Identity: s}, nil
}
