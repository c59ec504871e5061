package core

import (
	"encoding/json"
	"errors"
	"fmt"
)

// JSONErrorMessage describes a JSON error without echoing the input (which may
// hold key material or secrets).
func JSONErrorMessage(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at offset %d.", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("property '%s' has the wrong type.", te.Field)
	default:
		return "the payload could not be parsed."
	}
}
