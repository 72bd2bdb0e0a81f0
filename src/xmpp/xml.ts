/**
 * The one place the project gets XML elements from: build stanzas with `xml(name, attrs,
 * ...children)` and type them as `Element`. Never concatenate XML strings.
 */
import xmlLib from '@xmpp/xml';

export const xml = xmlLib;
export type Element = xmlLib.Element;
export const Element = xmlLib.Element;
export type XmlAttrs = xmlLib.Attrs;
export type XmlChild = xmlLib.Child;
