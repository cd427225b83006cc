package web

import "github.com/switchd/switchd"

// PageDevices selects one page of devices for q from a fleet's full list,
// as a Backend answers GET /api/v1/devices. The page shares no memory with
// all beyond the DeviceStatus values it copies.
func PageDevices(all []switchd.DeviceStatus, q DevicesQuery) DevicesView {
	v := DevicesView{Fleet: q.Fleet, Total: len(all), Offset: q.Offset, Limit: q.Limit, Devices: []switchd.DeviceStatus{}}
	if v.Limit <= 0 {
		v.Limit = DefaultDevicesLimit
	}
	for i := range all {
		if q.ProblemOnly && all[i].Problem == "" {
			continue
		}
		if v.Matched >= v.Offset && len(v.Devices) < v.Limit {
			v.Devices = append(v.Devices, all[i])
		}
		v.Matched++
	}
	return v
}
