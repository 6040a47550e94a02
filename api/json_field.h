/* api/json_field.h — where a protobuf-c field lives inside its message
 * (shared by json.c and json_parse.c only). */
#ifndef VMMD_API_JSON_FIELD_H
#define VMMD_API_JSON_FIELD_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

/* The field's storage: the value, or for a repeated field the array pointer. */
static inline void *json_field__slot(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
	return (char *)m + f->offset;
}

/* has_X (proto2 optional), n_X (repeated) or X_case (oneof member). */
static inline void *json_field__quantifier(const ProtobufCMessage *m,
					   const ProtobufCFieldDescriptor *f)
{
	return (char *)m + f->quantifier_offset;
}

/* The field number of the oneof member that is set, or 0. */
static inline uint32_t json_field__oneof_case(const ProtobufCMessage *m,
					      const ProtobufCFieldDescriptor *f)
{
	return *(const uint32_t *)json_field__quantifier(m, f);
}

/* Size of one value of the field as protobuf-c stores it (an array element). */
static inline size_t json_field__size(const ProtobufCFieldDescriptor *f)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32: return sizeof(uint32_t);
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64: return sizeof(uint64_t);
	case PROTOBUF_C_TYPE_FLOAT: return sizeof(float);
	case PROTOBUF_C_TYPE_DOUBLE: return sizeof(double);
	case PROTOBUF_C_TYPE_BOOL: return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_ENUM: return sizeof(int);
	case PROTOBUF_C_TYPE_STRING: return sizeof(char *);
	case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_MESSAGE: return sizeof(ProtobufCMessage *);
	}
	return 0;
}

#endif
