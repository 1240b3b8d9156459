package store

import "errors"

// Store keeps values by key.
type Store struct {
	items map[string]string
}

// Get returns the value of key.
func (s *Store) Get(key string) (string, error) {
	v, ok := s.items[key]
	if !ok {
		return "", errors.New("missing")
	}
	return v, nil
}

func New() *Store {
	return &Store{items: map[string]string{}}
}
