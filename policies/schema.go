package policies

import "reflect"

// PolicyFileType is the type a policy file is decoded into, for generating
// its JSON Schema (internal/schema, switchd schema policy).
func PolicyFileType() reflect.Type { return reflect.TypeFor[policyFile]() }
