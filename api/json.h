/* api/json.h — protobuf-c messages to and from JSON, driven only by the
 * message descriptors, so a field added to api/vmm.proto needs no code here.
 *
 * The mapping is proto3's JSON mapping with the proto field names kept
 * (snake_case, as errors name them):
 *   message -> object         repeated -> array        oneof -> the member set
 *   enum -> its value's full name ("VM_STATE_RUNNING"); names or numbers in
 *   int32, uint32, sint32, fixed32, sfixed32 -> number
 *   int64, uint64, sint64, fixed64, sfixed64 -> string ("42"); numbers or strings in
 *   float, double -> number, or "NaN", "Infinity", "-Infinity"
 *   bool -> true/false        string -> string         bytes -> base64
 * On output, proto3 fields at their default (0, false, "", empty, first enum
 * value, unset message) are left out; a oneof member that is set is always
 * written. On input, null means the default, integers may also be strings,
 * base64 may be standard or URL-safe, padded or not.
 */
#ifndef VMMD_API_JSON_H
#define VMMD_API_JSON_H

#include <stddef.h>

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>

#include "api/error.h"

/* The JSON object for m (a new reference), or NULL with errno = ENOMEM.
 * Text in string fields that is not UTF-8 is written with U+FFFD in place
 * of the bad bytes (protobuf-c does not check what it unpacks). */
json_t *api_json__from_message(const ProtobufCMessage *m);

/* Parses the JSON object in into a new message of type d. On success
 * returns 0 and *out is to be freed with protobuf_c_message_free_unpacked(
 * *out, NULL). On failure returns -EINVAL (or -ENOMEM), *out is NULL and
 * err (may be NULL) says what is wrong and at which field, as a path from
 * the top ("spec.disks[1].path"). */
int api_json__to_message(const ProtobufCMessageDescriptor *d, json_t *in, ProtobufCMessage **out,
			 struct api_error *err);

/* api_json__to_message on the JSON text buf[0..len): a request body. An
 * empty body is an empty message; text that is not JSON, or has a key twice,
 * is an INVALID_ARGUMENT error saying where. */
int api_json__parse(const ProtobufCMessageDescriptor *d, const char *buf, size_t len,
		    ProtobufCMessage **out, struct api_error *err);

#endif
