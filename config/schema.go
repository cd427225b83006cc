package config

import "reflect"

// SiteFileType is the type a site file is decoded into, for generating its
// JSON Schema (internal/schema, switchd schema site).
func SiteFileType() reflect.Type { return reflect.TypeFor[siteFile]() }

// JSONSchema describes what demoSpeed's DecodeNode accepts: a number or a
// string such as 3600x.
func (demoSpeed) JSONSchema() map[string]any {
	return map[string]any{
		"description": "trace seconds per wall second: a number such as 3600, or 3600x",
		"anyOf": []any{
			map[string]any{"type": "number"},
			map[string]any{"type": "string"}, // "3600x"; strconv.ParseFloat's forms are too many for a pattern
			map[string]any{"type": "null"},
		},
	}
}
