/** tun2socks library entry point. */
export {};
