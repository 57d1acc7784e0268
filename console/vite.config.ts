import { defineConfig } from "vite";
import preact from "@preact/preset-vite";

// Served by `extensor serve` at /console/ from files embedded in the
// binary. The output has no inline script or style (the CSP forbids them)
// and content-hashed names only, so a rebuild from the same source is
// byte-identical.
export default defineConfig({
  base: "/console/",
  plugins: [preact()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
    cssCodeSplit: false,
    rollupOptions: { output: { manualChunks: undefined } },
  },
  server: { proxy: { "/api": "http://127.0.0.1:8080" } },
});
