/* api/routes.c — every method of the Vmm service with its REST mapping. */
#include "api/service.h"

#include <string.h>

#define ROUTE(n, verb, path, req, resp)                                                    \
	{ #n, verb, path, &vmmd__v1__##req##__descriptor, &vmmd__v1__##resp##__descriptor, \
	  false }
#define STREAM(n, verb, path, req, resp)                                                   \
	{ #n, verb, path, &vmmd__v1__##req##__descriptor, &vmmd__v1__##resp##__descriptor, \
	  true }

const struct api_route api_routes[] = {
	ROUTE(CreateVm, "POST", "/v1/vms", create_vm_request, operation),
	ROUTE(ListVms, "GET", "/v1/vms", list_vms_request, list_vms_response),
	ROUTE(GetVm, "GET", "/v1/vms/{id}", get_vm_request, vm),
	ROUTE(DeleteVm, "DELETE", "/v1/vms/{id}", delete_vm_request, operation),
	ROUTE(StartVm, "POST", "/v1/vms/{id}:start", start_vm_request, operation),
	ROUTE(StopVm, "POST", "/v1/vms/{id}:stop", stop_vm_request, operation),
	ROUTE(RebootVm, "POST", "/v1/vms/{id}:reboot", reboot_vm_request, operation),
	ROUTE(PauseVm, "POST", "/v1/vms/{id}:pause", pause_vm_request, operation),
	ROUTE(ResumeVm, "POST", "/v1/vms/{id}:resume", resume_vm_request, operation),
	ROUTE(SnapshotVm, "POST", "/v1/vms/{id}:snapshot", snapshot_vm_request, operation),
	ROUTE(RestoreVm, "POST", "/v1/vms:restore", restore_vm_request, operation),
	ROUTE(MigrateVm, "POST", "/v1/vms/{id}:migrate", migrate_vm_request, operation),
	ROUTE(ServiceVm, "POST", "/v1/vms/{id}:service", service_vm_request, operation),
	ROUTE(ServiceFleet, "POST", "/v1/paravisor:service", service_fleet_request,
	      service_fleet_response),
	ROUTE(GetOperation, "GET", "/v1/operations/{id}", get_operation_request, operation),
	ROUTE(ListOperations, "GET", "/v1/operations", list_operations_request,
	      list_operations_response),
	ROUTE(CancelOperation, "POST", "/v1/operations/{id}:cancel", cancel_operation_request,
	      operation),
	ROUTE(GetConsoleLog, "GET", "/v1/vms/{id}/console", get_console_log_request,
	      get_console_log_response),
	ROUTE(GetVersion, "GET", "/v1/version", get_version_request, get_version_response),
	STREAM(WatchEvents, "GET", "/v1/events", watch_events_request, event),
	STREAM(ConsoleStream, "GET", "/v1/vms/{vm_id}/console:stream", console_stream_request,
	       console_stream_response),
};

const size_t api_nr_routes = sizeof(api_routes) / sizeof(api_routes[0]);

const struct api_route *api_route__by_name(const char *name)
{
	for (size_t i = 0; i < api_nr_routes; i++)
		if (!strcmp(api_routes[i].name, name))
			return &api_routes[i];
	return NULL;
}
