package matchd

// MaxPlayerIDLen is the longest accepted player id.
const MaxPlayerIDLen = 64

// ValidPlayerID reports whether id is a well-formed player id: 1 to 64
// characters of [A-Za-z0-9_.-]. Ids end up in Redis keys, log lines and
// URLs, so the alphabet is kept deliberately small.
func ValidPlayerID(id string) bool {
	if len(id) == 0 || len(id) > MaxPlayerIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '.', c == '-':
		default:
			return false
		}
	}
	return true
}
