package policies

// JSONSchema describes what ramp's DecodeNode accepts: a number of kW per
// minute, or unlimited.
func (ramp) JSONSchema() map[string]any {
	return map[string]any{
		"description": "kW per minute, or unlimited",
		"anyOf": []any{
			map[string]any{"type": "number"},
			map[string]any{"const": "unlimited"},
			map[string]any{"type": "null"},
		},
	}
}
