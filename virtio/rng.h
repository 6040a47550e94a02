/* virtio/rng.h — virtio-rng (virtio 1.2, 5.4): buffers filled by getrandom(). */
#ifndef VMMD_VIRTIO_RNG_H
#define VMMD_VIRTIO_RNG_H

#include "virtio/device.h"

/* A new model, not started; free it with ops->destroy(). */
struct virtio_device *virtio_rng__create(const char *id);

#endif
