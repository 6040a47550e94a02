/* migration/thread_nice.h — a migration's threads outrank the guest's vCPUs
 * for the CPU while the migration runs (thread_nice.c). */
#ifndef VMMD_MIGRATION_THREAD_NICE_H
#define VMMD_MIGRATION_THREAD_NICE_H

/* Default nice value of a migration's threads: under contention they get
 * about nine times a vCPU's share of a CPU, and none of it when idle. */
#define THREAD_NICE_MIGRATION (-10)

/* Sets the calling thread's nice value (threads it starts inherit it);
 * *old gets the one before.  -EPERM without CAP_SYS_NICE: nothing changed. */
int thread_nice__set(int nice, int *old);
/* Back to old (raising a nice value never needs a privilege). */
void thread_nice__restore(int old);
/* The calling thread's nice value now. */
int thread_nice__get(void);

#endif
