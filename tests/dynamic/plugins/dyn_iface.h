/* The interface of the test plugin dyn_plugin.c ("dyn.counter"), shared by the plugin and the
   tests that load it. */
#ifndef DYN_IFACE_H
#define DYN_IFACE_H

#define DYN_IFACE_ID "dyn.counter"
#define DYN_IFACE_ABI 1u

typedef struct dyn_vtable {
    /* Returns the plugin build's version number (1, 2, ...), or -1 when called on an instance
       that was shut down (which a correct host never does). Counts the call. */
    int (*call)(void *instance);
    long (*get_state)(void *instance);
    void (*set_state)(void *instance, long state);
    long (*calls)(void *instance);
} dyn_vtable;

#endif
