package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"strings"
	"sync"
)

// maxCachedKeys bounds the signing key cache; when it is full it is emptied.
// Entries only exist for known secrets and for dates within the accepted
// clock skew or presign expiry, so this is rarely reached.
const maxCachedKeys = 1024

// keyScope identifies a derived signing key.
type keyScope struct {
	secret, date, region, service string
}

// signingKey is a derived SigV4 signing key, held as a pool of HMAC-SHA256
// states keyed with it.
type signingKey struct {
	macs sync.Pool // of hash.Hash
}

// keyCache caches derived signing keys; its zero value is ready to use.
type keyCache struct {
	mu   sync.RWMutex
	keys map[keyScope]*signingKey
}

// get returns the signing key of a scope, deriving it on first use:
// HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date), region), service), "aws4_request").
func (c *keyCache) get(scope keyScope) *signingKey {
	c.mu.RLock()
	key := c.keys[scope]
	c.mu.RUnlock()
	if key != nil {
		return key
	}

	derived := []byte("AWS4" + scope.secret)
	for _, part := range [...]string{scope.date, scope.region, scope.service, scopeTerminator} {
		mac := hmac.New(sha256.New, derived)
		mac.Write([]byte(part))
		derived = mac.Sum(nil)
	}
	key = &signingKey{macs: sync.Pool{New: func() any { return hmac.New(sha256.New, derived) }}}
	// Copy the strings so that the cache does not keep requests alive.
	scope = keyScope{
		secret:  strings.Clone(scope.secret),
		date:    strings.Clone(scope.date),
		region:  strings.Clone(scope.region),
		service: strings.Clone(scope.service),
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if existing := c.keys[scope]; existing != nil {
		return existing
	}
	if c.keys == nil || len(c.keys) >= maxCachedKeys {
		c.keys = make(map[keyScope]*signingKey)
	}
	c.keys[scope] = key
	return key
}
