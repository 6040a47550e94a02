/* common/log.h — one logging API: levels and an object prefix, one event per line. */
#ifndef VMMD_COMMON_LOG_H
#define VMMD_COMMON_LOG_H

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

void log__set_level(enum log_level level);
void log__set_prefix(const char *prefix);
enum log_level log__level(void);
void log__msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define pr_err(...) log__msg(LOG_ERROR, __VA_ARGS__)
#define pr_warn(...) log__msg(LOG_WARN, __VA_ARGS__)
#define pr_info(...) log__msg(LOG_INFO, __VA_ARGS__)
#define pr_debug(...)                                                          \
	do {                                                                   \
		if (log__level() >= LOG_DEBUG)                                 \
			log__msg(LOG_DEBUG, __VA_ARGS__);                      \
	} while (0)

/* Log a guest-triggered problem only the first time it happens at this call site. */
#define pr_warn_once(...)                                                      \
	do {                                                                   \
		static int __warned;                                           \
		if (!__atomic_exchange_n(&__warned, 1, __ATOMIC_RELAXED))      \
			log__msg(LOG_WARN, __VA_ARGS__);                       \
	} while (0)

#endif
