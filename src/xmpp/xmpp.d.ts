/**
 * Typings for the parts of xmpp.js 0.13 (CommonJS, no bundled types) that src/xmpp/ uses.
 * Only src/xmpp/ imports these modules; everything else goes through src/xmpp/xml.ts and
 * src/xmpp/connection.ts.
 */

declare module '@xmpp/xml' {
  /** ltx 3 `createElement`: null/undefined attributes are dropped, others stringified. */
  function xml(name: string, attrs?: xml.Attrs | string | null, ...children: xml.Child[]): xml.Element;

  namespace xml {
    type Attrs = { [name: string]: string | number | null | undefined };
    type Node = Element | string;
    type Child = Node | number | boolean | null | undefined | Child[];

    /** ltx Element. Attribute values of parsed and built elements are strings. */
    class Element {
      constructor(name: string, attrs?: Attrs | string);
      name: string;
      attrs: { [name: string]: string | undefined };
      children: Node[];
      parent: Element | null;

      /** Name without prefix, and (when given) namespace, resolved upwards through parents. */
      is(name: string, xmlns?: string): boolean;
      getName(): string;
      getNS(): string | undefined;
      getAttr(name: string, xmlns?: string): string | undefined;
      getChild(name: string, xmlns?: string): Element | undefined;
      getChildren(name: string, xmlns?: string): Element[];
      getChildElements(): Element[];
      /** Text of the first matching child, null when there is none. */
      getChildText(name: string, xmlns?: string): string | null;
      /** Concatenated direct text children. */
      getText(): string;
      text(): string;
      text(value: string): this;
      attr(name: string): string | undefined;
      attr(name: string, value: string | null): this;

      /** Appends a new child element and returns it (the child, not this). */
      c(name: string, attrs?: Attrs | string): Element;
      cnode<T extends Node>(child: T): T;
      append(...nodes: Node[]): void;
      prepend(...nodes: Node[]): void;
      /** Appends a text node and returns this. */
      t(text: string): this;
      remove(child: Element | string, xmlns?: string): this;
      /** The parent, or this element when it has none. */
      up(): Element;
      root(): Element;
      toString(): string;
    }

    function escapeXML(text: string): string;
    function escapeXMLText(text: string): string;
  }

  export = xml;
}

declare module '@xmpp/jid' {
  function jid(address: string): jid.JID;
  function jid(local: string | null | undefined, domain: string, resource?: string | null): jid.JID;

  namespace jid {
    /** Domain and local part are lower-cased; no other stringprep. */
    class JID {
      constructor(local: string | null | undefined, domain: string, resource?: string | null);
      local: string;
      domain: string;
      resource: string;
      bare(): JID;
      equals(other: JID): boolean;
      toString(unescape?: boolean): string;
    }
    /** Throws TypeError on an empty domain. */
    function parse(address: string): JID;
  }

  export = jid;
}

declare module '@xmpp/component' {
  import { EventEmitter } from 'node:events';
  import type { Socket } from 'node:net';
  import xmlModule = require('@xmpp/xml');
  import jidModule = require('@xmpp/jid');

  interface ComponentOptions {
    /** xmpp://host:port */
    service: string;
    domain: string;
    password: string;
  }

  /**
   * The entity returned by `component()`: a @xmpp/connection-tcp Connection plus the modules
   * wired in by @xmpp/component (reconnect, middleware, iqCaller, iqCallee).
   *
   * Events: 'status' (status, ...args) and one event per status ('connecting', 'connect',
   * 'opening', 'open' (stream header), 'online', 'closing', 'close' (server's </stream:stream>),
   * 'disconnecting', 'disconnect' (socket closed), 'offline'), 'element' (every child of the
   * stream, stream errors included), 'stanza', 'nonza', 'send' (element written), 'input' and
   * 'output' (raw strings: never log them), 'error' (socket errors, StreamError, TimeoutError,
   * parser errors; an EventEmitter 'error' without a listener throws).
   */
  interface Component extends EventEmitter {
    status: string;
    jid: jidModule.JID | null;
    socket: Socket | null;
    /** Default timeout (ms) of open(), close(), disconnect() and the handshake. */
    timeout: number;
    options: ComponentOptions;
    reconnect: EventEmitter & { delay: number; start(): void; stop(): void };

    /** Opens the socket then the stream; resolves at 'online'. See connection.ts for why we do not use it. */
    start(): Promise<jidModule.JID>;
    /** Resolves once the socket is connected (rejects on socket error). */
    connect(service: string): Promise<void>;
    /** Sends the stream header; resolves with the server's header, rejects on 'error' or timeout. */
    open(options: { domain: string; lang?: string; timeout?: number }): Promise<xmlModule.Element>;
    /** Closes the stream, then the socket (each step waits up to `timeout`). */
    stop(): Promise<xmlModule.Element | undefined>;
    disconnect(timeout?: number): Promise<void>;
    /** Sets `from` on stanzas that lack it, and `parent` to the stream root (mutates `el`). */
    send(el: xmlModule.Element): Promise<void>;
  }

  function component(options: ComponentOptions): Component;
  const xml: typeof xmlModule;
  const jid: typeof jidModule;

  export { component, xml, jid, Component, ComponentOptions };
}
